"""Scheduled list loading (the inbox) and the metrics endpoint."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dialer.inbox import scan_inbox
from dialer.metrics import render, serve_metrics
from dialer.store import repo
from dialer.store.models import Contact
from dialer.worker import Worker, WorkerOptions


def test_inbox_imports_each_file_once(engine, tmp_path) -> None:
    with Session(engine) as s, s.begin():
        repo.create_campaign(s, "c")
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.csv").write_text("phone,name\n13800138000,甲\nabc,乙\n", encoding="utf-8")
    (folder / "b.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    (folder / "c.csv.importing-other").write_text("phone\n13900000000\n", encoding="utf-8")  # another worker's
    done = scan_inbox(engine, "c", folder, "w1")
    assert [p.name for p in done] == ["a.csv"]
    assert scan_inbox(engine, "c", folder, "w2") == []  # nothing left to take
    processed = folder / "processed"
    assert json.loads((processed / "a.summary.json").read_text())["imported"] == 1
    assert "abc" in (processed / "a.rejects.csv").read_text(encoding="utf-8-sig")
    assert "no phone column" in (folder / "failed" / "b.csv.error.txt").read_text()
    assert (folder / "c.csv.importing-other").exists()
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 1


async def test_metrics_endpoint(engine) -> None:
    worker = Worker(engine, WorkerOptions(), handle_signals=False)
    worker.stats.dials = 7
    worker.stats.outcomes = {"answered": 2, "no_answer": 5}
    assert 'dialer_outcomes_total{outcome="no_answer"} 5' in render(worker)
    server = await serve_metrics(worker, 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    server.close()
    assert body.startswith("HTTP/1.1 200 OK") and "dialer_dials_total 7" in body
