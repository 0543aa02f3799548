"""The campaign page's charts, drawn on the server as SVG by pygal (no script, no network:
the same markup goes into the page and into the mailed HTML report). Each takes report
records (dialer/reports) and returns the SVG as a string."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pygal
from pygal.style import Style

from dialer.reports.common import rate
from dialer.store.models import OUTCOMES
from dialer.web.labels import outcome_text, text

FONT = '"Noto Sans CJK SC","WenQuanYi Zen Hei","Microsoft YaHei","PingFang SC",sans-serif'
STYLE = Style(font_family=FONT, background="white", plot_background="white", title_font_size=15,
              legend_font_size=12, label_font_size=11, major_label_font_size=11,
              colors=("#2e7d32", "#9e9e9e", "#f9a825", "#c62828", "#6a1b9a", "#ef6c00", "#455a64", "#1565c0",
                      "#ad1457", "#00838f"))
#: pygal writes a small inline script for its tooltips (needs its JavaScript from the network):
#: left out, the SVG stands alone
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
#: the outcomes in the model's order (the `daily` report's), attempts still open last
OUTCOME_ORDER = (*OUTCOMES, "open")


def _config(title: str, **extra: Any) -> dict[str, Any]:
    return {"js": [], "disable_xml_declaration": True, "style": STYLE, "width": 860, "height": 320,
            "title": title, "legend_at_bottom": True, "legend_at_bottom_columns": 5, "truncate_legend": -1,
            "no_data_text": "无数据 No data", "x_label_rotation": 0, "explicit_size": False, **extra}


def _svg(chart: Any) -> str:
    return _SCRIPT.sub("", chart.render(is_unicode=True))


def _short_day(day: str) -> str:
    return day[5:]  # MM-DD


def outcomes_by_day(daily: Sequence[dict[str, Any]]) -> str:
    days = sorted({r["day"] for r in daily})
    counts: dict[str, dict[str, int]] = {}
    for r in daily:
        counts.setdefault(r["outcome"], {})[r["day"]] = r["attempts"]
    chart = pygal.StackedBar(**_config(text("outcomes_daily"), show_minor_x_labels=False))
    chart.x_labels = [_short_day(d) for d in days]
    chart.x_labels_major = chart.x_labels[:: max(1, len(days) // 10)]
    for o in sorted(counts, key=lambda o: OUTCOME_ORDER.index(o) if o in OUTCOME_ORDER else 99):
        chart.add(outcome_text(o), [counts[o].get(d) for d in days])
    return _svg(chart)


def answer_rate_by_hour(hourly: Sequence[dict[str, Any]]) -> str:
    """Live answers per dial by hour of the day (the campaign's clock), over the records given."""
    dials, live = [0] * 24, [0] * 24
    for r in hourly:
        h = int(r["interval"][11:13])
        dials[h] += r["dials"]
        live[h] += r["live_answers"]
    hours = [h for h in range(24) if dials[h]]
    chart = pygal.Bar(**_config(text("answer_by_hour"), show_legend=False,
                                value_formatter=lambda v: f"{v:.1f} %"))
    chart.x_labels = [f"{h:02d}" for h in hours]
    chart.add(text("answered"), [round(100 * (rate(live[h], dials[h]) or 0), 2) for h in hours])
    return _svg(chart)


def abandonment_by_day(compliance: Sequence[dict[str, Any]]) -> str:
    """The compliance record: each day's abandonment and the 30-day rate, against the cap."""
    rows = sorted(compliance, key=lambda r: r["day"])
    chart = pygal.Line(**_config(text("abandon_daily"), value_formatter=lambda v: f"{v:.2f} %", dots_size=3))
    chart.x_labels = [_short_day(r["day"]) for r in rows]

    def pct(v: Any) -> float | None:
        return None if v is None else round(100 * v, 3)

    chart.add("当日 day", [pct(r["rate"]) for r in rows])
    chart.add("30天 30 days", [pct(r["rate_30d"]) for r in rows])
    chart.add(text("target"), [pct(r["target"]) for r in rows], show_dots=False, stroke_style={"dasharray": "6,4"})
    return _svg(chart)


def occupancy(agents: Sequence[dict[str, Any]]) -> str:
    rows = [a for a in agents if a.get("occupancy") is not None]
    rows.sort(key=lambda a: a["agent"])
    chart = pygal.HorizontalBar(**_config(text("occupancy"), show_legend=False,
                                          height=max(200, 60 + 22 * len(rows)), value_formatter=lambda v: f"{v:.1f} %"))
    chart.x_labels = [f"{a['agent']} {a.get('name') or ''}".strip() for a in rows]
    chart.add(text("occupancy"), [round(100 * a["occupancy"], 1) for a in rows])
    return _svg(chart)


__all__ = ["outcomes_by_day", "answer_rate_by_hour", "abandonment_by_day", "occupancy"]
