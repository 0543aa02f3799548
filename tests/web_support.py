"""The console under test: served by uvicorn on 127.0.0.1 port 0 in a thread of its own, with
users of each role, a campaign with a history, and (for the browser tests) Debian's chromium."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from dialer.store import repo
from dialer.store.models import Attempt, Contact, SeatEvent
from dialer.store.users import add_user, create_token

PASSWORD = "密码-secret-123"
ROLES = ("viewer", "manager", "admin")
ROOT = Path(__file__).resolve().parent.parent


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1, port 0, in a thread with its own event loop."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=1, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="console", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the console did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@contextlib.contextmanager
def console(engine: Any, **options: Any) -> Iterator[str]:
    """The console on `engine` (WebOptions from `options`); its base URL."""
    from dialer.web.app import WebOptions, create_app

    app = create_app(engine, WebOptions(**options))
    with ServerThread(app) as url:
        yield url


def add_users(engine: Any) -> dict[str, str]:
    """A user of each role (named after it) with PASSWORD; their API tokens by role."""
    tokens = {}
    with Session(engine) as s, s.begin():
        for role in ROLES:
            add_user(s, role, role, PASSWORD)
        for role in ROLES:
            tokens[role] = create_token(s, role)
    return tokens


def make_campaign(engine: Any, name: str = "c", agents: tuple[str, ...] = ("601", "602"), status: str = "resume",
                  **settings: Any) -> None:
    with Session(engine) as s, s.begin():
        repo.create_campaign(s, name, queue="kefu", area_code="010", max_attempts=3, ring_timeout=20, wrap_up=5,
                             retry=["no_answer=120", "busy=60"], **settings)
        if status:
            repo.set_campaign_status(s, name, status)
        repo.upsert_agents(s, [repo.AgentRow(f"1{ext}", f"坐席{ext}", ext, "kefu") for ext in agents])


OUTCOMES = [("answered", 30), ("no_answer", 40), ("busy", 12), ("failed", 5), ("abandoned", 0.6), ("timeout", 5),
            ("agent_no_answer", 3), ("answered_late", 0.3), ("interrupted", 2)]


def seed_history(engine: Any, campaign: str = "c", days: int = 3, per_day: int = 40, now: dt.datetime | None = None,
                 seed: int = 7) -> int:
    """`days` days of attempts (up to `now`) with every outcome, and agent 601's seat events
    (logged in, talking, wrap-up): data for every chart. Returns the attempts written."""
    rng = random.Random(seed)
    now = now or dt.datetime.now(dt.timezone.utc)
    names = [o for o, _ in OUTCOMES]
    weights = [w for _, w in OUTCOMES]
    n = 0
    with Session(engine) as s, s.begin():
        c = repo.get_campaign(s, campaign)
        for d in range(days):
            day = now - dt.timedelta(days=days - 1 - d)
            start = day.replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 in Beijing
            if start > now:
                start = now - dt.timedelta(hours=2)
            s.add(SeatEvent(at=start, worker_id="w0", extension="601", queue="kefu", role="agent", state="ready",
                            reason="", session=1))
            for i in range(per_day):
                phone = f"+86139{d:02d}{i:06d}"
                contact = Contact(campaign_id=c.id, phone=phone, kind="mobile", name=f"客户{d}-{i}", status="done",
                                  attempts=1, next_attempt_at=start)
                s.add(contact)
                s.flush()
                at = start + dt.timedelta(minutes=3 * i)
                outcome = rng.choices(names, weights)[0]
                talked = outcome in ("answered", "answered_late")
                s.add(Attempt(campaign_id=c.id, contact_id=contact.id, attempt_no=1, worker_id="w0", seat="601",
                              dial_string="9" + phone[3:], callid=f"h{d}-{i}", created_at=at, dialled_at=at,
                              ringing_at=at + dt.timedelta(seconds=2),
                              answered_at=at + dt.timedelta(seconds=8) if talked or outcome == "abandoned" else None,
                              ended_at=at + dt.timedelta(seconds=60 if talked else 20), outcome=outcome,
                              ring_seconds=6.0, talk_seconds=52.0 if talked else None, province="北京", city="北京"))
                if talked:
                    s.add(SeatEvent(at=at + dt.timedelta(seconds=8), worker_id="w0", extension="601", queue="kefu",
                                    role="agent", state="talking", reason="", session=0))
                    s.add(SeatEvent(at=at + dt.timedelta(seconds=60), worker_id="w0", extension="601", queue="kefu",
                                    role="agent", state="wrap", reason="", session=0))
                    s.add(SeatEvent(at=at + dt.timedelta(seconds=75), worker_id="w0", extension="601", queue="kefu",
                                    role="agent", state="ready", reason="", session=0))
                n += 1
            s.add(SeatEvent(at=start + dt.timedelta(minutes=3 * per_day + 5), worker_id="w0", extension="601",
                            queue="kefu", role="agent", state="logged_out", reason="", session=-1))
    return n


# -- the browser ------------------------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
BROWSER_SKIP = ("browser tests skipped: install Debian's chromium (apt-get install chromium, as .ci/run does) or "
                "set DIALER_CHROMIUM to a Chromium executable")


def chromium() -> str:
    """The Chromium to drive: $DIALER_CHROMIUM, else Debian's. Skips when there is none — unless
    DIALER_REQUIRE_BROWSER is set (.ci/run sets it): then the test fails."""
    exe = os.environ.get("DIALER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe:
        return exe
    if os.environ.get("DIALER_REQUIRE_BROWSER"):
        pytest.fail("no chromium, and DIALER_REQUIRE_BROWSER is set: " + BROWSER_SKIP)
    pytest.skip(BROWSER_SKIP)


def screenshots() -> Path | None:
    """Where the tests save their screenshots: $DIALER_SCREENSHOTS (docs/images for docs/web.md)."""
    where = os.environ.get("DIALER_SCREENSHOTS")
    if not where:
        return None
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path


async def log_in(page: Any, base: str, user: str, password: str = PASSWORD) -> None:
    await page.goto(base + "/")
    await page.wait_for_url("**/login**")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.click("form.login button[type=submit]")
    await page.wait_for_selector("#who")
