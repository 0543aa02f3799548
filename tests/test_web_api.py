"""The console's HTTP API over a real socket (uvicorn on 127.0.0.1, port 0), on SQLite and on
PostgreSQL: every endpoint with and without a token, roles, bad and oversized bodies (nothing
stored), the reports' records against the library's, and contacts added through the API that
a worker then dials."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dialer.reports import report, stream_attempts
from dialer.reports.fields import REPORTS
from dialer.store.access_models import AuditEntry
from dialer.store.models import Attempt, Campaign, Contact, ImportBatch, RejectedRow
from tests.test_worker_e2e import SCRIPT, WED_10, run_worker, start_sim
from tests.web_support import add_users, console, make_campaign, seed_history

pytestmark = pytest.mark.timeout(120)


def count(engine: Any, model: Any) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model))


def status_of(engine: Any, name: str = "c") -> str:
    with Session(engine) as s:
        return s.scalar(select(Campaign.status).where(Campaign.name == name))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: every endpoint of the API, with a request that would succeed for a manager
ENDPOINTS = [
    ("GET", "/api/status", "/api/status", None),
    ("GET", "/api/campaigns", "/api/campaigns", None),
    ("GET", "/api/campaigns/{name}", "/api/campaigns/c", None),
    ("GET", "/api/reports/{name}", "/api/reports/summary?campaign=c", None),
    ("POST", "/api/campaigns/{name}/contacts", "/api/campaigns/c/contacts", [{"phone": "13800138000"}]),
    ("GET", "/api/imports/{batch}/rejects", "/api/imports/1/rejects", None),
    ("POST", "/api/campaigns/{name}/pause", "/api/campaigns/c/pause", None),
    ("POST", "/api/campaigns/{name}/resume", "/api/campaigns/c/resume", None),
    ("POST", "/api/campaigns/{name}/archive", "/api/campaigns/c/archive", None),
]
WRITES = {"/api/campaigns/c/contacts", "/api/campaigns/c/pause", "/api/campaigns/c/resume", "/api/campaigns/c/archive"}


def test_the_list_of_endpoints_is_the_openapi_document(engine) -> None:
    """A new endpoint is not left out of the token tests: the list above is the spec's."""
    add_users(engine)
    make_campaign(engine)
    with console(engine) as base:
        spec = httpx.get(base + "/api/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented == {(m, t) for m, t, _, _ in ENDPOINTS}
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert {"application/json", "text/csv"} <= set(spec["paths"]["/api/campaigns/{name}/contacts"]["post"]["requestBody"]["content"])


def test_every_endpoint_wants_a_known_token_and_a_viewer_changes_nothing(engine) -> None:
    tokens = add_users(engine)
    make_campaign(engine)
    with console(engine) as base, httpx.Client(base_url=base) as http:
        # a browser's session cookie is not a token: logged in, the API still says 401
        page = http.get("/login")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        assert http.post("/login", data={"username": "admin", "password": "密码-secret-123", "csrf": csrf}).status_code in (200, 303)
        for method, _, path, body in ENDPOINTS:
            r = http.request(method, path, json=body)
            assert r.status_code == 401, (method, path, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer") and "dialer users token" in r.json()["detail"]
            r = http.request(method, path, json=body, headers=bearer("dlr_not-a-token"))
            assert r.status_code == 401 and "not known" in r.json()["detail"]
            r = http.request(method, path, json=body, headers={"Authorization": "Basic YWRtaW46eA=="})
            assert r.status_code == 401
        http.cookies.clear()
        for method, _, path, body in ENDPOINTS:
            r = http.request(method, path, json=body, headers=bearer(tokens["viewer"]))
            if path.split("?")[0] in WRITES:
                assert r.status_code == 403 and "viewer" in r.json()["detail"], (path, r.text)
            else:
                assert r.status_code in (200, 404), (path, r.text)  # (import 1 does not exist yet)
        assert count(engine, Contact) == 0 and status_of(engine) == "active"
        for method, _, path, body in ENDPOINTS:
            r = http.request(method, path, json=body, headers=bearer(tokens["manager"]))
            assert r.status_code in (200, 201), (path, r.text)
        assert count(engine, Contact) == 1 and status_of(engine) == "archived"
        assert http.get("/api/imports/1/rejects", headers=bearer(tokens["manager"])).json() == []
    with Session(engine) as s:
        audit = [(a.actor, a.via, a.action, a.target) for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert audit == [("manager", "api", "import", "c"), ("manager", "api", "pause", "c"),
                     ("manager", "api", "resume", "c"), ("manager", "api", "archive", "c")]


def test_pause_resume_archive_and_what_a_campaign_cannot_do(engine) -> None:
    tokens = add_users(engine)
    make_campaign(engine)
    with console(engine) as base, httpx.Client(base_url=base, headers=bearer(tokens["admin"])) as http:
        assert http.post("/api/campaigns/c/pause").json() == {"campaign": "c", "status": "paused"}
        r = http.post("/api/campaigns/c/pause")
        assert r.status_code == 409 and "cannot pause" in r.json()["detail"]
        assert http.post("/api/campaigns/c/resume").json()["status"] == "active"
        assert http.post("/api/campaigns/nope/pause").status_code == 404
        assert http.post("/api/campaigns/c/explode").status_code == 404
        assert http.post("/api/campaigns/c/archive").json()["status"] == "archived"
        assert http.post("/api/campaigns/c/resume").status_code == 409
        assert http.get("/api/campaigns/c").json()["status"] == "archived"
        assert http.get("/api/campaigns/nope").status_code == 404


def test_the_reports_are_the_library_records(engine) -> None:
    tokens = add_users(engine)
    make_campaign(engine)
    now = dt.datetime.now(dt.timezone.utc)
    seed_history(engine, "c", days=2, per_day=20, now=now)
    with console(engine) as base, httpx.Client(base_url=base, headers=bearer(tokens["viewer"])) as http:
        for name in REPORTS:
            r = http.get(f"/api/reports/{name}", params={"campaign": "c"})
            assert r.status_code == 200, (name, r.text)
            if name == "attempts":
                expected = list(stream_attempts(engine, campaign="c"))
            elif name in ("summary", "agents", "compliance"):
                continue  # (they read the time now: compared below on their stable fields)
            else:
                expected = report(engine, name, campaign="c")
            assert r.json() == json.loads(json.dumps(expected, default=str)), name
        summary = http.get("/api/reports/summary").json()[0]
        assert summary["attempts"] == 40 and summary["campaign"] == "c"
        assert sum(r["attempts"] for r in http.get("/api/reports/daily").json()) == 40
        assert http.get("/api/reports/interval", params={"minutes": 15}).status_code == 200
        assert http.get("/api/reports/interval", params={"minutes": 7}).status_code == 422
        r = http.get("/api/reports/summary", params={"since": "yesterday"})
        assert r.status_code == 400 and "since" in r.json()["detail"]
        assert http.get("/api/reports/summary", params={"campaign": "nope"}).status_code == 404
        assert http.get("/api/reports/attempts", params={"campaign": "nope"}).status_code == 404
        assert http.get("/api/reports/nope").status_code == 422
        status = http.get("/api/status").json()
        assert status["alive"] == 0 and status["campaigns"][0]["campaign"] == "c"


GBK_CSV = "姓名,手机号码,客户编号\n张三,138 0013 8000,K1\n李四,1380013,K2\n王五,13912345678,K3\n".encode("gbk")


def test_contacts_as_json_or_csv_with_the_import_checks_and_rejects(engine) -> None:
    tokens = add_users(engine)
    make_campaign(engine)
    with console(engine) as base, httpx.Client(base_url=base, headers=bearer(tokens["manager"])) as http:
        r = http.post("/api/campaigns/c/contacts", json=[
            {"phone": "138 0013 8000", "name": "张三", "customer_id": "K1", "priority": 5, "套餐": "金卡"},
            {"phone": "12", "name": "坏号码"},
            {"phone": "+86 138 0013 8000", "name": "重复"},
            {"name": "没有号码"},
            {"phone": 13912345678, "name": "数字也行"},
        ])
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["summary"] | {"batch": 0} == body["summary"] | {
            "rows": 5, "imported": 2, "duplicates": 1, "rejected": 2, "dnc": 0, "batch": 0}
        assert [(x["item"], x["reason"].split(" ")[0]) for x in body["rejects"]] == [
            (2, "invalid"), (3, "duplicate"), (4, "no")]
        assert http.get(body["rejects_url"]).json() == [
            {"line": x["item"] + 1, "reason": x["reason"], "row": x["row"]} for x in body["rejects"]]
        r = http.post("/api/campaigns/c/contacts", content=GBK_CSV, headers={"content-type": "text/csv"})
        assert r.status_code == 201, r.text
        s = r.json()["summary"]
        assert (s["rows"], s["imported"], s["duplicates"], s["rejected"], s["encoding"][:2]) == (3, 0, 2, 1, "gb")
        assert [(x["line"], x["row"].split(",")[0]) for x in r.json()["rejects"]] == [(2, "张三"), (3, "李四"), (4, "王五")]
        r = http.post("/api/campaigns/nope/contacts", json=[{"phone": "13800138000"}])
        assert r.status_code == 404
    with Session(engine) as s:
        rows = {c.phone: c for c in s.scalars(select(Contact))}
    assert set(rows) == {"+8613800138000", "+8613912345678"}
    assert rows["+8613800138000"].name == "张三" and rows["+8613800138000"].priority == 5
    assert rows["+8613800138000"].extra == {"套餐": "金卡"}


BAD = [
    ("application/json", b"[{\"phone\": ", 400, "not JSON"),
    ("application/json", b"{\"phone\": \"13800138000\"}", 400, "JSON array"),
    ("application/json", b"[]", 400, "empty"),
    ("application/json", b"[\"13800138000\"]", 400, "not an object"),
    ("application/json", b"[{\"phone\": [\"13800138000\"]}]", 400, "string or a number"),
    ("application/json", b"[{\"phone\": \"13800138000\", \"name\": \"a\\nb\"}]", 400, "control character"),
    ("application/json", b"[{\"name\": \"x\"}]", 400, "no item has a \"phone\""),
    ("application/json", b"\xff\xfe", 400, "not JSON"),
    ("text/csv", b"  \n", 400, "empty"),
    ("text/plain", b"phone\n13800138000\n", 415, "application/json"),
    ("application/xml", b"<x/>", 415, "text/csv"),
]


@pytest.mark.parametrize("kind, body, code, says", BAD, ids=[b[3] + "-" + str(i) for i, b in enumerate(BAD)])
def test_a_bad_body_is_refused_whole_and_nothing_is_stored(engine, kind, body, code, says) -> None:
    tokens = add_users(engine)
    make_campaign(engine)
    with console(engine) as base:
        r = httpx.post(base + "/api/campaigns/c/contacts", content=body,
                       headers={**bearer(tokens["manager"]), "content-type": kind})
    assert r.status_code == code and says in r.json()["detail"], r.text
    assert (count(engine, Contact), count(engine, ImportBatch), count(engine, RejectedRow)) == (0, 0, 0)


def test_an_oversized_body_is_refused_before_it_is_read_and_nothing_is_stored(engine) -> None:
    """Over --max-api-body: 413 at once when Content-Length says so, and when a body without
    one (chunked) passes the limit; forms have a small limit of their own."""
    tokens = add_users(engine)
    make_campaign(engine)
    limit = 64 * 1024
    big = ("phone\n" + "".join(f"1380013{i:04d}\n" for i in range(limit // 12 + 10))).encode()
    assert len(big) > limit
    with console(engine, max_api_body=limit, max_form=4096) as base, httpx.Client(base_url=base) as http:
        h = {**bearer(tokens["manager"]), "content-type": "text/csv"}
        r = http.post("/api/campaigns/c/contacts", content=big, headers=h)
        assert r.status_code == 413

        def chunks():
            for i in range(0, len(big), 4096):
                yield big[i:i + 4096]

        r = http.post("/api/campaigns/c/contacts", content=chunks(), headers=h)  # no Content-Length
        assert r.status_code == 413
        r = http.post("/login", content=b"username=" + b"x" * 5000, headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413
        # just under the limit is taken
        fits = big[: big.rfind(b"\n", 0, limit) + 1]
        r = http.post("/api/campaigns/c/contacts", content=fits, headers=h)
        assert r.status_code == 201 and r.json()["summary"]["imported"] == fits.count(b"\n") - 1
    assert count(engine, ImportBatch) == 1


async def test_contacts_added_through_the_api_are_dialled_by_a_worker(engine) -> None:
    from tests.test_worker_e2e import setup_db

    tokens = add_users(engine)
    setup_db(engine, [], ["601", "602"])
    numbers = [c["number"] for c in SCRIPT["customers"]]
    with console(engine) as base:
        async with httpx.AsyncClient(base_url=base, headers=bearer(tokens["manager"])) as http:
            r = await http.post("/api/campaigns/c/contacts", json=[{"phone": n, "name": f"客户{i}"}
                                                                    for i, n in enumerate(numbers)])
    assert r.status_code == 201 and r.json()["summary"]["imported"] == len(numbers)
    # the worker's clock: the first Wednesday 10:00 (Beijing) after the import, in the calling window
    week = dt.timedelta(weeks=1)
    start = WED_10 + week * math.ceil((dt.datetime.now(dt.timezone.utc) - WED_10) / week)
    sim = await start_sim(SCRIPT)
    try:
        await run_worker(engine, sim, start=start)
    finally:
        await sim.stop()
    with Session(engine) as s:
        dialled = set(s.scalars(select(Contact.phone).join(Attempt, Attempt.contact_id == Contact.id)))
        statuses = dict(s.execute(select(Contact.phone, Contact.status)).all())
    assert {r.e164 for r in sim.call_log} == dialled and len(dialled) == len(numbers)
    assert statuses["+8613800138000"] == "done"


def test_an_api_import_that_fails_midway_stores_nothing(engine, monkeypatch) -> None:
    """The database fails on the second chunk: 503, and not a contact of the request is kept
    (a client sends it again as it was)."""
    from sqlalchemy.exc import OperationalError

    import dialer.importer as importer
    import dialer.web.imports as web_imports

    tokens = add_users(engine)
    make_campaign(engine)
    real_flush, real_import = importer._flush, importer.import_file
    calls = []

    def flaky_flush(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real_flush(*args, **kw)

    monkeypatch.setattr(importer, "_flush", flaky_flush)
    monkeypatch.setattr(web_imports, "import_file", lambda *a, **kw: real_import(*a, **{**kw, "chunk_rows": 100}))
    body = "phone\n" + "".join(f"1380013{i:04d}\n" for i in range(300))
    with console(engine) as base:
        r = httpx.post(base + "/api/campaigns/c/contacts", content=body.encode(),
                       headers={**bearer(tokens["manager"]), "content-type": "text/csv"})
    assert r.status_code == 503 and "nothing was stored" in r.json()["detail"] and r.headers["retry-after"]
    assert len(calls) >= 2
    assert (count(engine, Contact), count(engine, ImportBatch), count(engine, AuditEntry)) == (0, 0, 0)


def test_numbers_out_of_range_and_bad_encodings_are_4xx_not_500(engine) -> None:
    tokens = add_users(engine)
    make_campaign(engine)
    with console(engine) as base, httpx.Client(base_url=base, headers=bearer(tokens["manager"])) as http:
        assert http.get("/api/imports/99999999999999999999/rejects").status_code == 422
        assert http.get("/api/imports/0/rejects").status_code == 422
        for enc in ("utf-8\x00", "rot13", "klingon"):
            r = http.post("/api/campaigns/c/contacts", params={"encoding": enc}, content=b"phone\n13800138000\n",
                          headers={"content-type": "text/csv"})
            assert r.status_code == 400 and "unknown encoding" in r.json()["detail"], (enc, r.text)
    assert count(engine, Contact) == 0


def test_downloads_have_a_pool_of_their_own_and_say_when_it_is_full(engine, monkeypatch) -> None:
    """A slow download holds a connection of the downloads' pool (here of one): the next one
    is told to come back (503), the pages' pool is untouched."""
    import threading

    from dialer.web import api as api_module

    hold = threading.Event()

    def slow(export_engine, **kw):
        with export_engine.connect():
            yield {"id": 1}
            hold.wait(20)

    monkeypatch.setattr(api_module, "stream_attempts", slow)
    tokens = add_users(engine)
    make_campaign(engine)
    with console(engine, max_exports=1) as base, httpx.Client(base_url=base, headers=bearer(tokens["viewer"])) as http:
        with http.stream("GET", "/api/reports/attempts") as first:
            chunks = first.iter_bytes()
            next(chunks)  # open, its connection held
            r = http.get("/api/reports/attempts")
            assert r.status_code == 503 and r.headers["retry-after"]
            assert http.get("/api/status").status_code == 200  # the pages' pool is not the downloads'
            hold.set()
            assert b"".join(chunks).strip().endswith(b"]")
        assert http.get("/api/reports/attempts").json() == [{"id": 1}]
