"""The HTTP API (`/api/…`, JSON; documented at /api/openapi.json and /api/docs): status, every
report (the records of `dialer report … --format json`), campaigns with pause / resume /
archive, and contacts added to a campaign as a JSON array or a CSV body — through the importer,
with its checks and its report of refused rows. Authenticated by API tokens
(`dialer users token NAME`, sent as `Authorization: Bearer …`)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dialer.importer import ImportFailed, check_encoding
from dialer.reports import PeriodError, UnknownCampaign, parse_when, report, stream_attempts
from dialer.reports.fields import REPORTS
from dialer.store.repo import InvalidInput, NotFound, campaign_record, get_campaign, list_campaigns, set_campaign_status
from dialer.store.users import audit, user_for_token
from dialer.web import views
from dialer.web.deps import export_engine
from dialer.web import imports
from dialer.web.imports import BadContacts, Job, json_to_csv, save_upload
from dialer.web.security import Principal

bearer = HTTPBearer(auto_error=False, description="An API token from `dialer users token NAME`.")
router = APIRouter(prefix="/api", tags=["api"])
#: refused rows returned in the response (all of them: GET /api/imports/{batch}/rejects)
REJECTS_SHOWN = 1000


async def api_user(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    if cred is None:
        raise HTTPException(401, "an API token is needed: Authorization: Bearer <token> (dialer users token NAME)",
                            headers={"WWW-Authenticate": "Bearer"})
    engine = request.app.state.engine

    def lookup() -> Principal | None:
        with Session(engine) as s, s.begin():
            u = user_for_token(s, cred.credentials, request.app.state.clock())
            return None if u is None else Principal(u.id, u.name, u.role, "api")

    user = await run_in_threadpool(lookup)
    if user is None:
        raise HTTPException(401, "the API token is not known (revoked, or mistyped)",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return user


def _may(user: Principal, permission: str) -> None:
    if not user.may(permission):
        raise HTTPException(403, f"{user.name} is a {user.role}: not allowed to change anything")


class Contact(BaseModel):
    """A contact to add; other keys are kept as the contact's extra data."""

    model_config = ConfigDict(extra="allow")
    phone: str = Field(description="The number as written: +86 138 0013 8000, 13800138000, 010-6552 9988, …")
    name: str | None = None
    customer_id: str | None = None
    priority: int | None = None
    timezone: str | None = Field(None, description="IANA timezone of the contact (its calling window)")


class StatusChange(BaseModel):
    campaign: str
    status: str


class ImportResult(BaseModel):
    summary: dict[str, Any]
    rejects: list[dict[str, Any]]
    rejects_url: str | None


@router.get("/status", summary="What the workers are doing now (dialer status --format json)")
def api_status(request: Request, user: Principal = Depends(api_user)) -> dict[str, Any]:
    return views.wallboard(request.app.state.engine, request.app.state.clock())


@router.get("/campaigns", summary="Every campaign's settings (dialer campaign list --format json)")
def api_campaigns(request: Request, user: Principal = Depends(api_user)) -> list[dict[str, Any]]:
    with Session(request.app.state.engine) as s:
        return [campaign_record(c) for c in list_campaigns(s)]


@router.get("/campaigns/{name}", summary="One campaign's settings")
def api_campaign(request: Request, name: str, user: Principal = Depends(api_user)) -> dict[str, Any]:
    with Session(request.app.state.engine) as s:
        try:
            return campaign_record(get_campaign(s, name))
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None


def _json_array(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    first = True
    yield "["
    for r in rows:
        yield ("\n" if first else ",\n") + json.dumps(r, ensure_ascii=False, default=str)
        first = False
    yield "\n]\n"


@router.get("/reports/{name}", summary="A report's records (dialer report NAME --format json)",
            description="Reports: " + ", ".join(REPORTS) + ". Dates are in each campaign's timezone "
            "(docs/reports.md); `attempts` is streamed.")
def api_report(request: Request, name: Literal[REPORTS], campaign: list[str] = Query(default=[]),  # type: ignore[valid-type]
               since: str | None = None, until: str | None = None,
               minutes: int = Query(60, description="interval: 15, 30 or 60"),
               user: Principal = Depends(api_user)) -> Any:
    engine = request.app.state.engine
    if minutes not in (15, 30, 60):
        raise HTTPException(422, "minutes: 15, 30 or 60")
    try:
        t0, t1 = parse_when(since, "since"), parse_when(until, "until")
        if name == "attempts":
            with Session(engine) as s:
                for c in campaign:
                    get_campaign(s, c)
            rows = stream_attempts(export_engine(request), campaign=campaign, since=t0, until=t1)
            return StreamingResponse(_json_array(rows),
                                     media_type="application/json")
        return report(engine, name, campaign=campaign, since=t0, until=t1, minutes=minutes,
                      now=request.app.state.clock())
    except PeriodError as exc:
        raise HTTPException(400, str(exc)) from None
    except (UnknownCampaign, NotFound) as exc:
        raise HTTPException(404, str(exc)) from None


CONTACTS_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Contact"}}},
    "text/csv": {"schema": {"type": "string"},
                 "example": "phone,name\n13800138000,张三\n"}}}}


#: POST /api/campaigns/{name}/contacts: registered by app.create_app, with its body limit
CONTACTS_ROUTE: dict[str, Any] = dict(
    summary="Add contacts (a JSON array, or a CSV body)", openapi_extra=CONTACTS_BODY, response_model=ImportResult,
    status_code=201, tags=["api"],
    description="The same checks as `dialer import`: each refused row comes back with its reason "
    "(`line`: the CSV line, or the JSON item's number as `item`). A body that is not a list of "
    "contacts is refused whole (400), and so is one over the console's --max-api-body (413): "
    "nothing is stored.")


async def api_contacts(request: Request, name: str, encoding: str = "auto",
                       user: Principal = Depends(api_user)) -> Any:
    _may(user, "change")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/json", "text/csv"):
        raise HTTPException(415, "send application/json (an array of contacts) or text/csv")
    body = await request.body()
    engine = request.app.state.engine
    if kind == "application/json":
        try:
            items = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"the body is not JSON: {str(exc)[:200]}") from None
        try:
            body = json_to_csv(items)
        except BadContacts as exc:
            raise HTTPException(400, str(exc)) from None
        encoding = "utf-8"
    else:
        if not body.strip():
            raise HTTPException(400, "the body is empty: no contacts to add")
        if encoding != "auto":
            try:
                check_encoding(encoding[:40])
            except ImportFailed as exc:
                raise HTTPException(400, str(exc)) from None
    path = save_upload(io.BytesIO(body))
    job = Job("api", name, f"api:{kind}", len(body), user.name, "api")
    # one transaction: a request is stored whole or not at all (a client may simply send it again)
    await run_in_threadpool(lambda: imports.run_import(engine, job, path, encoding, commit_chunks=False))
    if job.state != "done" or job.summary is None:
        status = 404 if job.error.startswith("no campaign") else 503 if job.transient else 400
        raise HTTPException(status, job.error + (": nothing was stored" if status == 503 else ""),
                            headers={"Retry-After": "10"} if status == 503 else None)
    batch = job.summary.batch
    rejects = list(views.rejects(engine, batch, limit=REJECTS_SHOWN)) if batch is not None else []
    if kind == "application/json":
        for r in rejects:
            r["item"] = r.pop("line") - 1
    rec = job.record()["summary"]
    return {"summary": rec, "rejects": rejects,
            "rejects_url": f"/api/imports/{batch}/rejects" if batch is not None and rec["rejected"] + rec["duplicates"] + rec["dnc"] else None}


@router.get("/imports/{batch}/rejects", summary="An import's refused rows, with their reasons")
def api_rejects(request: Request, batch: Annotated[int, Path(ge=1, le=2**63 - 1)], user: Principal = Depends(api_user)) -> Any:
    engine = request.app.state.engine
    if views.batch_campaign(engine, batch) is None:
        raise HTTPException(404, "no such import")
    return StreamingResponse(_json_array(views.rejects(export_engine(request), batch)), media_type="application/json")


def api_action(request: Request, name: str, user: Principal = Depends(api_user)) -> Any:
    action = request.url.path.rsplit("/", 1)[1]
    _may(user, "change")
    try:
        with Session(request.app.state.engine) as s, s.begin():
            c = set_campaign_status(s, name, action, check_ready=True)
            audit(s, user.name, "api", action, name, status=c.status)
            return {"campaign": name, "status": c.status}
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except InvalidInput as exc:
        raise HTTPException(409, str(exc)) from None


for _action, _what in (("pause", "Pause a campaign (calls in progress finish)"),
                       ("resume", "Start a campaign, or resume it after a pause"),
                       ("archive", "Archive a campaign: it is never dialled again")):
    router.add_api_route(f"/campaigns/{{name}}/{_action}", api_action, methods=["POST"], summary=_what,
                         response_model=StatusChange)


__all__ = ["router", "api_user", "api_contacts", "CONTACTS_ROUTE"]
