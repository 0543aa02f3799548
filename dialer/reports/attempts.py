"""`attempts`: one record per attempt, streamed from the database in batches (flat memory for
millions of rows); times in the campaign's timezone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from dialer.reports.common import A, iso
from dialer.reports.period import Span
from dialer.store.models import Campaign, Contact

BATCH = 2000


def attempts(conn: Connection, c: Campaign, span: Span, *, outcome: str | None = None, phone: str | None = None,
             newest_first: bool = False, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The campaign's attempts in the span; only those with `outcome` ("open": not ended yet),
    or to a phone number holding the digits `phone`, when given."""
    ct = Contact.__table__.c
    q = (select(A.id, ct.phone, A.attempt_no, A.seat, A.agent_extension, A.dial_string, A.callid, A.created_at,
                A.ringing_at, A.answered_at, A.bridged_at, A.ended_at, A.outcome, A.talk_seconds, A.ring_seconds,
                A.province, A.city, A.isp, A.worker_id, A.detail)
         .join(Contact.__table__, ct.id == A.contact_id)
         .where(A.campaign_id == c.id, *span.where(A.created_at))
         .order_by(A.id.desc() if newest_first else A.id).limit(limit))
    if outcome is not None:
        q = q.where(A.outcome.is_(None) if outcome == "open" else A.outcome == outcome)
    if phone:
        q = q.where(ct.phone.contains(phone, autoescape=True))
    tz = span.tz
    progressive = c.mode == "progressive"  # the seat that dialled is the agent's; predictive: a port
    result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(q)
    for (id_, phone, no, seat, agent, dial, callid, created, ringing, answered, bridged, ended, outcome, talk, ring,
         province, city, isp, worker, detail) in result:
        yield {"id": id_, "campaign": c.name, "phone": phone, "attempt": no, "seat": seat, "agent": agent or (seat if progressive else ""),
               "dial_string": dial, "callid": callid, "started_at": iso(created, tz), "ringing_at": iso(ringing, tz),
               "answered_at": iso(answered, tz), "bridged_at": iso(bridged, tz), "ended_at": iso(ended, tz),
               "outcome": outcome, "talk_seconds": talk, "ring_seconds": ring, "province": province, "city": city,
               "isp": isp, "worker": worker, "detail": detail}
