"""`dialer report html`: the campaign page as one HTML file — its styles inline, its charts
inline SVG, no script and nothing fetched (a Content-Security-Policy of 'none' says so to the
browser), for a manager to mail."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine

from dialer.web import views
from dialer.web.deps import configure

HERE = Path(__file__).resolve().parent


def render_report(engine: Engine, campaign: str, now: dt.datetime) -> str:
    env = configure(Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"])))
    page = views.campaign_page(engine, campaign, now, attempts=False)
    css = (HERE / "static" / "style.css").read_text(encoding="utf-8")
    return env.get_template("report.html").render(page=page, css=css)


def write_report(engine: Engine, campaign: str, path: str | os.PathLike[str], now: dt.datetime) -> int:
    """Write the report; its size in bytes. The file appears whole or not at all."""
    html = render_report(engine, campaign, now).encode("utf-8")
    target = Path(path)
    part = target.with_name(target.name + ".part")
    part.write_bytes(html)
    os.replace(part, target)
    return len(html)


__all__ = ["render_report", "write_report"]
