"""A large list through the upload page: streamed to disk a block at a time (the console's
memory stays a few MB for a 38 MB file), imported with its progress readable while it runs."""

from __future__ import annotations

import re
import time
import tracemalloc

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dialer.store.models import Contact
from tests.web_support import PASSWORD, add_users, console, make_campaign

pytestmark = pytest.mark.timeout(180)


def _session(base: str, user: str = "manager") -> tuple[httpx.Client, str]:
    http = httpx.Client(base_url=base, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text).group(1)
    assert http.post("/login", data={"username": user, "password": PASSWORD, "csrf": csrf}).status_code == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/campaigns/c/import").text).group(1)
    return http, csrf


def _big_list(path, rows: int) -> int:
    note = "备注" * 330  # about 2 KB a row in UTF-8
    with path.open("w", encoding="utf-8") as f:
        f.write("电话,姓名,备注\n")
        for i in range(rows):  # the second half: 12 digits, refused
            f.write(f"1380013{i % (rows // 2):04d}{'' if i < rows // 2 else '0'},客户{i},{note}\n")
    return path.stat().st_size


def test_a_large_upload_goes_to_disk_a_block_at_a_time(engine, tmp_path, monkeypatch) -> None:
    """A 38 MB list through the upload: the console's Python memory peaks at a few MB (the
    multipart body spooled to disk, copied a block at a time); the import gets the whole file."""
    import dialer.web.imports as imports

    got = {}

    def hand_over(engine, job, path, encoding="auto", **kw):  # (the import's own memory: below)
        got["size"] = __import__("os").path.getsize(path)
        job.state = "done"
        __import__("os").unlink(path)

    monkeypatch.setattr(imports, "run_import", hand_over)
    add_users(engine)
    make_campaign(engine)
    size = _big_list(tmp_path / "big.csv", 20_000)
    assert size > 30 * 2**20
    with console(engine) as base:
        http, csrf = _session(base)
        tracemalloc.start()
        try:
            with (tmp_path / "big.csv").open("rb") as f:
                r = http.post("/campaigns/c/import", data={"csrf": csrf, "encoding": "auto"},
                              files={"file": ("大名单.csv", f, "text/csv")}, headers={"accept": "application/json"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert r.status_code == 202, r.text[:300]
        deadline = time.monotonic() + 30
        while "size" not in got:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert got["size"] == size
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MB of Python memory for a {size / 2**20:.0f} MB upload"


def test_an_upload_is_imported_with_its_progress_shown(engine, tmp_path) -> None:
    add_users(engine)
    make_campaign(engine)
    rows = 4_000
    path = tmp_path / "list.csv"
    size = _big_list(path, rows)
    with console(engine) as base:
        http, csrf = _session(base)
        with path.open("rb") as f:
            r = http.post("/campaigns/c/import", data={"csrf": csrf, "encoding": "auto"},
                          files={"file": ("名单.csv", f, "text/csv")}, headers={"accept": "application/json"})
        assert r.status_code == 202, r.text[:300]
        url = r.json()["url"]
        seen = []
        deadline = time.monotonic() + 120
        while True:
            job = http.get(url + "/status").json()
            seen.append(job["percent"])
            if job["state"] != "running":
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        page = http.get(url).text
        listed = http.get(f"/batches/{job['summary']['batch']}")
        assert http.get("/batches/99999").status_code == 404
    assert listed.status_code == 200 and "名单.csv" in listed.text and listed.text.count('class="reason"') == 1000
    assert job["state"] == "done", job
    assert job["bytes"] == size and job["file"] == "名单.csv"
    s = job["summary"]
    assert (s["rows"], s["imported"], s["rejected"]) == (rows, rows // 2, rows // 2)
    assert seen == sorted(seen) and seen[-1] == 100.0
    assert 'id="import-summary"' in page and page.count("<tr>") >= 1000  # the first 1,000 refused rows
    with Session(engine) as ses:
        assert ses.scalar(select(func.count()).select_from(Contact)) == rows // 2


def test_uploads_refused_before_anything_is_stored(engine, tmp_path) -> None:
    """No campaign, no file, a viewer, an unknown encoding, over --max-upload: refused with a
    one-line reason; a file that is not a list: the import says why; nothing stored."""
    add_users(engine)
    make_campaign(engine)
    with console(engine, max_upload=4096) as base:
        http, csrf = _session(base)
        ok = {"file": ("a.csv", b"phone\n13800138000\n", "text/csv")}
        assert http.post("/campaigns/nope/import", data={"csrf": csrf}, files=ok).status_code == 404
        r = http.post("/campaigns/c/import", data={"csrf": csrf, "encoding": "klingon"}, files=ok)
        assert r.status_code == 400 and "unknown encoding" in r.text
        r = http.post("/campaigns/c/import", data={"csrf": csrf}, files={"file": ("", b"", "text/csv")})
        assert r.status_code in (400, 422)
        r = http.post("/campaigns/c/import", data={"csrf": csrf},
                      files={"file": ("big.csv", b"phone\n" + b"13800138000\n" * 1000, "text/csv")})
        assert r.status_code == 413
        r = http.post("/campaigns/c/import", data={"csrf": csrf}, files={"file": ("x.png", b"\x89PNG\r\n\x1a\n\x00\x00", "image/png")})
        assert r.status_code == 303
        page = http.get(r.headers["location"])
        while 'data-state="running"' in page.text:
            time.sleep(0.05)
            page = http.get(r.headers["location"])
        assert "导入失败" in page.text and "Traceback" not in page.text
        viewer, vcsrf = _session(base, "viewer")
        assert viewer.post("/campaigns/c/import", data={"csrf": vcsrf}, files=ok).status_code == 403
    with Session(engine) as ses:
        assert ses.scalar(select(func.count()).select_from(Contact)) == 0
