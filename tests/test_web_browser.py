"""The console in a real browser: headless Chromium (Debian's) driven by Playwright.

Log in; the wallboard follows a worker running on the simulator within 3 s; pause and resume
a campaign; upload a GBK list with Chinese headers and read its refused rows; the charts are
drawn with data; a viewer's pause is refused; a form without its CSRF token is refused; the
HTML report opens from a file with the network off. The screenshots of docs/web.md are taken
here (DIALER_SCREENSHOTS=docs/images)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.cli import main
from dialer.clock import Clock
from dialer.store.access_models import AuditEntry
from dialer.store.models import Campaign, Contact
from dialer.store.engine import make_engine
from dialer.store.migrate import upgrade
from tests.test_worker_e2e import worker_running
from tests.web_support import (CHROMIUM_ARGS, PASSWORD, add_users, chromium, console, log_in, make_campaign,
                               screenshots, seed_history)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def engine(tmp_path) -> Any:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.url_string = url  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    exe = chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def new_page(browser: Any) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


def status_of(engine: Any, name: str = "c") -> str:
    with Session(engine) as s:
        return s.scalar(select(Campaign.status).where(Campaign.name == name))


async def test_log_in_and_the_wallboard_follows_the_worker_within_3_seconds(engine, browser) -> None:
    """A wrong password is refused; the wallboard says no worker is alive, then shows the
    worker's agents as it logs them in, and an agent's break within 3 s of the worker's change."""
    add_users(engine)
    make_campaign(engine)
    page = await new_page(browser)
    with console(engine) as base:
        await log_in_wrong(page, base)
        await log_in(page, base, "viewer")
        await page.wait_for_selector("#no-worker")
        assert "没有正在运行的外呼进程" in await page.inner_text("#no-worker")
        # the worker on the wall clock (the console reads its lease and status row against it),
        # its periodic status row a minute apart: what the board shows comes from the row an
        # agent's change brings forward (dialer/worker/seatlog.py)
        async with worker_running(engine, {"customers": []}, clock=Clock(), status_every=60.0) as (sim, worker):
            await page.wait_for_selector('.tile[data-extension="601"][data-state="ready"]', timeout=30_000)
            await page.wait_for_selector('.tile[data-extension="602"][data-state="ready"]', timeout=30_000)
            assert await page.query_selector("#no-worker") is None
            await asyncio.sleep(1.0)  # (a quiet moment: the change below is the next one)
            sim.set_busy("601", "小休")
            changed = time.monotonic()
            await page.wait_for_selector('.tile[data-extension="601"][data-state="busy"]', timeout=3_000)
            seen = time.monotonic() - changed
            assert seen < 3.0
            assert "小休" in await page.inner_text('.tile[data-extension="601"]')
            # and back: ready again
            sim.set_busy("601", "")
            await page.wait_for_selector('.tile[data-extension="601"][data-state="ready"]', timeout=3_000)
            shots = screenshots()
            if shots:
                sim.set_busy("602", "培训")
                await page.wait_for_selector('.tile[data-extension="602"][data-state="busy"]', timeout=3_000)
                await page.screenshot(path=str(shots / "wallboard.png"), full_page=True)
        await page.wait_for_selector("#no-worker", timeout=30_000)  # the worker stopped


async def log_in_wrong(page: Any, base: str) -> None:
    await page.goto(base + "/campaigns")
    await page.wait_for_url("**/login?next=%2Fcampaigns")
    await page.fill("input[name=username]", "viewer")
    await page.fill("input[name=password]", "not the password")
    await page.click("form.login button[type=submit]")
    await page.wait_for_selector("#login-error")
    assert "用户名或密码错误" in await page.inner_text("#login-error")


async def test_campaign_page_charts_filters_and_pause_resume(engine, browser) -> None:
    """The campaign page draws its four charts with data, filters its attempts, downloads them
    as CSV, and a manager pauses and resumes the campaign (each written to the audit log)."""
    add_users(engine)
    make_campaign(engine, "春季回访")
    written = seed_history(engine, "春季回访", days=3, per_day=40)
    page = await new_page(browser)
    with console(engine) as base:
        await log_in(page, base, "manager")
        await page.goto(base + "/campaigns")
        await page.click('a:text-is("春季回访")')
        await page.wait_for_selector("#charts")
        charts = await page.query_selector_all("figure.chart")
        assert [await c.get_attribute("data-chart") for c in charts] == [
            "outcomes_daily", "answer_by_hour", "abandon_daily", "occupancy"]
        for c in charts:
            assert int(await c.get_attribute("data-points")) > 0
            svg = await c.query_selector("svg")
            assert svg is not None and (await svg.bounding_box())["height"] > 100
            # pygal draws each series as a group of shapes: data, not an empty frame
            assert await c.eval_on_selector_all("svg .series rect, svg .series path", "els => els.length") > 0
        assert "3" in await page.inner_text("#summary")  # (figures are there)
        assert await page.locator("#attempts-table tbody tr").count() == 100  # the newest 100 of 120
        # filter: one outcome, then a phone number's digits
        await page.select_option("select[name=outcome]", "busy")
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**outcome=busy**")
        rows = await page.locator("#attempts-table tbody td.outcome").all_inner_texts()
        assert rows and all("占线" in r for r in rows)
        await page.fill("input[name=phone]", "1390100000")
        await page.select_option("select[name=outcome]", "")
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**phone=1390100000**")
        assert await page.locator("#attempts-table tbody tr").count() == 10  # +86139 01 00000x
        async with page.expect_download() as got:
            await page.click("#attempts-csv")
        download = await got.value
        lines = (await download.path()).read_text(encoding="utf-8-sig").splitlines()
        assert lines[0].startswith("id,campaign,phone") and len(lines) == 11
        await page.goto(base + "/campaigns/" + "春季回访")
        shots = screenshots()
        if shots:  # (the figures and charts: the attempts table runs on below)
            await page.set_viewport_size({"width": 1280, "height": 1400})
            await page.screenshot(path=str(shots / "campaign.png"))
        # pause and resume
        await page.click("#btn-pause")
        await page.wait_for_selector(".flash.ok")
        assert "已暂停" in await page.inner_text("#status")
        assert status_of(engine, "春季回访") == "paused"
        await page.click("#btn-resume")
        await page.wait_for_selector(".flash.ok")
        assert "运行中" in await page.inner_text("#status")
        assert status_of(engine, "春季回访") == "active"
    with Session(engine) as s:
        audit = [(a.actor, a.via, a.action, a.target) for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert audit == [("manager", "web", "pause", "春季回访"), ("manager", "web", "resume", "春季回访")]
    assert written == 120


GBK_LIST = ("姓名,电话,客户编号,备注\r\n"
            "张三,138 0013 8000,K001,老客户\r\n"
            "李四,010-6552 9988,K002,\r\n"
            "王五,1380013,K003,号码不对\r\n"
            "赵六,138 0013 8000,K004,重复\r\n"
            "钱七,,K005,没有号码\r\n"
            "孙八,+86 139 1234 5678,K006,\r\n")


async def test_gbk_upload_with_chinese_headers_shows_its_refused_rows(engine, browser, tmp_path) -> None:
    add_users(engine)
    make_campaign(engine)
    path = tmp_path / "名单.csv"
    path.write_bytes(GBK_LIST.encode("gbk"))
    page = await new_page(browser)
    with console(engine) as base:
        await log_in(page, base, "manager")
        await page.goto(base + "/campaigns/c/import")
        await page.set_input_files("input[name=file]", str(path))
        await page.click("#upload button[type=submit]")
        await page.wait_for_selector("#import-summary", timeout=30_000)
        assert await page.inner_text("#rows") == "6"
        assert await page.inner_text("#imported") == "3"
        reasons = await page.locator("#rejects td.reason").all_inner_texts()
        raws = await page.locator("#rejects td.raw").all_inner_texts()
        assert len(reasons) == 3
        assert any("王五" in r for r in raws) and any("钱七" in r for r in raws) and any("赵六" in r for r in raws)
        assert "gb" in (await page.inner_text("#import-summary")).lower()
        async with page.expect_download() as got:
            await page.click("#rejects-csv")
        report = (await (await got.value).path()).read_text(encoding="utf-8-sig")
        assert report.splitlines()[0] == "line,reason,row" and "王五" in report and len(report.splitlines()) == 4
    with Session(engine) as s:
        names = sorted(s.scalars(select(Contact.name)))
        actors = [(a.actor, a.action) for a in s.scalars(select(AuditEntry))]
    assert names == ["孙八", "张三", "李四"]
    assert actors == [("manager", "import")]


async def test_a_viewer_cannot_pause_and_a_form_without_its_csrf_token_is_refused(engine, browser) -> None:
    add_users(engine)
    make_campaign(engine)
    page = await new_page(browser)
    with console(engine) as base:
        await log_in(page, base, "viewer")
        await page.goto(base + "/campaigns/c")
        await page.click("#btn-pause")
        await page.wait_for_selector("#error")
        assert "权限不足" in await page.inner_text("#error")
        assert status_of(engine) == "active"
        # a manager's form with its token taken out: refused, nothing changed
        manager = await new_page(browser)
        await log_in(manager, base, "manager")
        await manager.goto(base + "/campaigns/c")
        await manager.eval_on_selector_all("input[name=csrf]", "els => els.forEach(e => e.remove())")
        await manager.click("#btn-pause")
        await manager.wait_for_selector("#error")
        assert "CSRF" in await manager.inner_text("#error")
        assert status_of(engine) == "active"
        # a forged token is refused the same way
        await manager.goto(base + "/campaigns/c")
        await manager.eval_on_selector_all("input[name=csrf]", "els => els.forEach(e => e.value = 'forged')")
        await manager.click("#btn-pause")
        await manager.wait_for_selector("#error")
        assert status_of(engine) == "active"
        # the log-in form carries one too
        fresh = await new_page(browser)
        await fresh.goto(base + "/login")
        await fresh.eval_on_selector_all("input[name=csrf]", "els => els.forEach(e => e.remove())")
        await fresh.fill("input[name=username]", "manager")
        await fresh.fill("input[name=password]", PASSWORD)
        await fresh.click("form.login button[type=submit]")
        await fresh.wait_for_selector("#error")
        assert await fresh.query_selector("#who") is None
    with Session(engine) as s:
        assert s.scalars(select(AuditEntry)).all() == []


async def test_the_html_report_opens_from_a_file_with_the_network_off(engine, browser, tmp_path) -> None:
    make_campaign(engine, "春季回访")
    seed_history(engine, "春季回访", days=3)
    out = tmp_path / "报告.html"
    result = CliRunner().invoke(main, ["--db", engine.url_string, "report", "html", "春季回访", "-o", str(out)])
    assert result.exit_code == 0, result.output
    context = await browser.new_context(offline=True)
    asked: list[str] = []
    context.on("request", lambda r: asked.append(r.url))
    page = await context.new_page()
    await page.goto(out.as_uri())
    await page.wait_for_selector("#charts")
    assert asked == [out.as_uri()]  # the file itself, and nothing else
    charts = await page.query_selector_all("figure.chart svg")
    assert len(charts) == 4
    for c in charts:
        assert (await c.bounding_box())["height"] > 100
    assert await page.eval_on_selector_all("figure.chart svg .series rect, figure.chart svg .series path",
                                           "els => els.length") > 0
    assert "春季回访" in await page.inner_text("#campaign-name")
    assert await page.query_selector("script") is None
    await context.close()
