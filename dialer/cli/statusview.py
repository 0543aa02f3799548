"""`dialer status` drawn with rich: workers, queues (agents by state, time in state), campaigns."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

STATE_STYLE = {"ready": "green", "dialling": "cyan", "talking": "bold blue", "wrap": "magenta", "busy": "yellow",
               "lost": "bold red"}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _since(seconds: int) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def render(snap: dict[str, Any]) -> Group:
    parts: list[Any] = []
    if not snap["alive"]:
        parts.append(Text("no worker is alive", style="bold red"))
    w = Table(title=f"workers at {snap['at']}", title_justify="left")
    for col in ("worker", "host", "alive", "last seen", "seats", "ports", "lease", "calls", "outbox"):
        w.add_column(col)
    for r in snap["workers"]:
        w.add_row(r["worker"], r["host"], Text("yes", "green") if r["alive"] else Text("no", "red"),
                  f"{r['seconds_since_seen']:.0f}s ago", str(r["seats"]), str(r["ports"]), r["lease"],
                  str(r["calls"]), str(r["outbox"]))
    parts.append(w)
    for q in snap["queues"]:
        parts.append(Text(f"queue {q['queue']}: {q['calls']} call(s) in flight, {q['waiting']} caller(s) waiting, "
                          f"{q['ports']} port(s), level {q['level'] if q['level'] is not None else '-'}", style="bold"))
        t = Table()
        for col in ("agent", "name", "state", "for", "worker"):
            t.add_column(col)
        for s in q["seats"]:
            state = s["state"] + (f" ({s['reason']})" if s["reason"] else "")
            t.add_row(s["extension"], s["name"], Text(state, STATE_STYLE.get(s["state"], "")),
                      _since(s["seconds_in_state"]), s["worker"])
        counts = ", ".join(f"{k} {v}" for k, v in sorted(q["agents"].items()))
        t.caption = counts or "no agents"
        parts.append(t)
    c = Table(title="campaigns (last hour / today)", title_justify="left")
    for col in ("campaign", "status", "dialable", "dials", "live", "abandoned", "abandon 24h / 30d", "target",
                "level"):
        c.add_column(col, overflow="fold")
    for r in snap["campaigns"]:
        style = "bold red" if r["over_cap"] else ""
        c.add_row(r["campaign"], r["status"], str(r["dialable"]), f"{r['dials_hour']} / {r['dials_today']}",
                  f"{r['live_answers_hour']} / {r['live_answers_today']}",
                  f"{r['abandoned_hour']} / {r['abandoned_today']}",
                  Text(f"{_pct(r['abandon_rate_24h'])} / {_pct(r['abandon_rate_30d'])}", style),
                  _pct(r["abandon_target"]), "-" if r["level"] is None else str(r["level"]))
    parts.append(c)
    return Group(*parts)
