"""The campaign pages: the list, a campaign's figures, charts, attempts and per-agent report,
its pause / resume / archive buttons, and loading a list (upload, progress, refused rows)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dialer.csvio import CsvWriter
from dialer.reports import COLUMNS
from dialer.importer import ImportFailed, check_encoding
from dialer.store.repo import InvalidInput, NotFound, get_campaign, list_campaigns, set_campaign_status
from dialer.store.users import audit
from dialer.web import views
from dialer.web.deps import export_engine, flash, form_checked, now, page_user, render, require
from dialer.web.imports import save_upload
from dialer.web.security import Principal

router = APIRouter(include_in_schema=False)
#: an import's number (a database integer: a larger one is no import, not an overflow)
BatchId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ACTIONS = ("pause", "resume", "archive")
#: offered on the upload form (the importer takes any Python codec: dialer import --encoding)
ENCODINGS = ("utf-8", "gb18030", "gbk", "big5", "utf-16")


def _url(name: str, tail: str = "") -> str:
    return f"/campaigns/{quote(name, safe='')}{tail}"


def _filters(request: Request) -> views.Filters:
    q = request.query_params
    try:
        return views.Filters.of(q.get("outcome"), q.get("since"), q.get("until"), q.get("phone"))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, user: Principal = Depends(page_user)) -> Any:
    with Session(request.app.state.engine) as s:
        rows = [{"name": c.name, "status": c.status, "mode": c.mode, "queue": c.queue, "timezone": c.timezone,
                 "abandon_target": c.abandon_target} for c in list_campaigns(s)]
    return render(request, "campaigns.html", user, rows=rows, actions=ACTIONS)


@router.get("/campaigns/{name}", response_class=HTMLResponse)
def campaign_page(request: Request, name: str, user: Principal = Depends(page_user)) -> Any:
    f = _filters(request)
    try:
        page = views.campaign_page(request.app.state.engine, name, now(request), f)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return render(request, "campaign.html", user, page=page, actions=ACTIONS, url=_url(name),
                  csv_url=_url(name, "/attempts.csv") + ("?" + urlencode(f.query()) if f.query() else ""))


def _csv(rows: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    buf = io.StringIO()
    w = CsvWriter(buf)
    buf.write("\ufeff")  # (Excel reads UTF-8 with its mark)
    w.writerow(columns)
    for i, r in enumerate(rows):
        w.writerow("" if r.get(c) is None else r.get(c) for c in columns)
        if i % 500 == 499:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _download(name: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}


@router.get("/campaigns/{name}/attempts.csv")
def attempts_csv(request: Request, name: str, user: Principal = Depends(page_user)) -> Any:
    f = _filters(request)
    engine = request.app.state.engine
    with Session(engine) as s:
        try:
            get_campaign(s, name)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
    rows = views.attempt_rows(export_engine(request), name, f, limit=None)
    return StreamingResponse(_csv(rows, COLUMNS["attempts"]), media_type="text/csv; charset=utf-8",
                             headers=_download(f"{name}-attempts.csv"))


@router.get("/campaigns/{name}/import", response_class=HTMLResponse)
def import_page(request: Request, name: str, user: Principal = Depends(page_user)) -> Any:
    try:
        batches = views.batches(request.app.state.engine, name)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return render(request, "import.html", user, name=name, url=_url(name), batches=batches,
                  encodings=("auto", *ENCODINGS), max_mb=request.app.state.opt.max_upload // 2**20)


# (POST /campaigns/{name}/import: registered by app.create_app, with the upload's body limit)
async def upload(request: Request, name: str, user: Principal = Depends(page_user)) -> Any:
    require(user, "change")  # (before the body is read: a viewer's upload is not even spooled)

    def known() -> None:
        with Session(request.app.state.engine) as s:
            get_campaign(s, name)

    try:
        await run_in_threadpool(known)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    form = await form_checked(request)
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        raise HTTPException(400, "请选择文件 Choose a CSV file to upload")
    encoding = str(form.get("encoding") or "auto")
    if encoding != "auto":
        try:
            check_encoding(encoding[:40])
        except ImportFailed as exc:
            raise HTTPException(400, str(exc)) from None
    path = await run_in_threadpool(save_upload, upload.file)
    try:
        await upload.close()
        job = request.app.state.jobs.start(name, upload.filename[:200], path, user.name, encoding)
    except BaseException:  # (cancelled before the import owns the file: it is ours to remove)
        os.unlink(path)
        raise
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"job": job.id, "url": f"/imports/{job.id}"}, status_code=202)
    return RedirectResponse(f"/imports/{job.id}", status_code=303)


def _job(request: Request, job_id: str) -> Any:
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, "no such import (finished imports are listed on the campaign's import page)")
    return job


@router.get("/imports/{job_id}", response_class=HTMLResponse)
def import_job_page(request: Request, job_id: str, user: Principal = Depends(page_user)) -> Any:
    job = _job(request, job_id)
    rejects = []
    if job.summary is not None and job.summary.batch is not None:
        rejects = list(views.rejects(request.app.state.engine, job.summary.batch, limit=1000))
    return render(request, "import_job.html", user, job=job.record(), url=_url(job.campaign), rejects=rejects)


@router.get("/imports/{job_id}/status")
def import_job_json(request: Request, job_id: str, user: Principal = Depends(page_user)) -> Any:
    return _job(request, job_id).record()


@router.get("/batches/{batch_id}/rejects.csv")
def rejects_csv(request: Request, batch_id: BatchId, user: Principal = Depends(page_user)) -> Any:
    engine = request.app.state.engine
    name = views.batch_campaign(engine, batch_id)
    if name is None:
        raise HTTPException(404, "no such import")
    return StreamingResponse(_csv(views.rejects(export_engine(request), batch_id), ["line", "reason", "row"]),
                             media_type="text/csv; charset=utf-8", headers=_download(f"{name}-{batch_id}-rejects.csv"))


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(request: Request, batch_id: BatchId, user: Principal = Depends(page_user)) -> Any:
    engine = request.app.state.engine
    name = views.batch_campaign(engine, batch_id)
    if name is None:
        raise HTTPException(404, "no such import")
    batch = next(iter(views.batches(engine, name, only=batch_id)), None)
    return render(request, "batch.html", user, name=name, url=_url(name), batch=batch,
                  rejects=list(views.rejects(engine, batch_id, limit=1000)))


async def campaign_action(request: Request, name: str, user: Principal = Depends(page_user)) -> Any:
    action = request.url.path.rsplit("/", 1)[1]
    await form_checked(request)
    require(user, "change")
    engine = request.app.state.engine

    def change() -> str:
        with Session(engine) as s, s.begin():
            c = set_campaign_status(s, name, action, check_ready=True)
            audit(s, user.name, "web", action, name, status=c.status)
            return c.status

    try:
        new = await run_in_threadpool(change)
        flash(request, f"活动 {name} 已{ {'pause': '暂停', 'resume': '启动', 'archive': '归档'}[action] } — campaign {name} is {new}")
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except InvalidInput as exc:
        flash(request, str(exc), "error")
    back = request.headers.get("referer", "")
    return RedirectResponse(_url(name) if "/campaigns/" in back or not back else "/campaigns", status_code=303)


for _action in ACTIONS:
    router.add_api_route(f"/campaigns/{{name}}/{_action}", campaign_action, methods=["POST"])


__all__ = ["router", "upload"]
