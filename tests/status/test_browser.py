"""The status page in headless Chromium against a real server of the app, driven by the fake plant.

Screenshots go to ``test-artifacts/``. In CI (CI=true) a missing Chromium or
playwright fails these tests; elsewhere they are skipped.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.status.conftest import CHROMIUM_ARGS, chromium_or_skip
from tests.status.served import Gateway, running_gateway

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MACHINES = ["cnc-1", "cnc-2", "pack-1", "vib-1", "vib-2"]


@contextlib.asynccontextmanager
async def page_on(gw: Gateway, width: int = 1920, height: int = 1080) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert errors == [], errors
        finally:
            await browser.close()


async def shot(page: Any, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


async def test_overview_shows_every_machine_and_a_stop_within_seconds() -> None:
    chromium_or_skip()
    async with running_gateway() as gw, page_on(gw) as page:
        await page.goto(gw.url + "/")
        for name in MACHINES:
            await page.wait_for_selector(f'[data-testid="tile-{name}"]', timeout=15000)
        for name in ("cnc-1", "cnc-2", "pack-1"):
            assert await page.get_attribute(f'[data-testid="tile-{name}"]', "data-state") == "running"
        for name in ("vib-1", "vib-2"):
            assert await page.get_attribute(f'[data-testid="tile-{name}"]', "data-state") == "monitoring"
        await page.wait_for_selector("#link-state.live")
        gw.plant.stop("cnc-2", 21)
        stopped_at = time.monotonic()
        await page.wait_for_selector('[data-testid="tile-cnc-2"][data-state="unplanned_stop"]', timeout=5000)
        assert time.monotonic() - stopped_at < 5
        tile = page.locator('[data-testid="tile-cnc-2"]')
        assert "spindle fault" in await tile.inner_text()
        assert await page.inner_text('[data-testid="count-stopped"]') == "1"
        gw.plant.planned_stop("pack-1")
        await page.wait_for_selector('[data-testid="tile-pack-1"][data-state="planned_stop"]', timeout=5000)
        gw.plant.disconnect("vib-2")
        await page.wait_for_selector('[data-testid="tile-vib-2"][data-state="offline"]', timeout=5000)
        await page.wait_for_selector("#gateway .conn.disconnected", timeout=5000)  # the next status heartbeat
        await shot(page, "overview-1080p.png", full_page=True)
        await page.set_viewport_size({"width": 1024, "height": 768})
        await page.wait_for_timeout(300)
        await shot(page, "overview-tablet.png")


async def test_machine_detail_renders_its_live_chart() -> None:
    chromium_or_skip()
    async with running_gateway() as gw, page_on(gw) as page:
        gw.plant.stop("cnc-2", 21)
        await page.goto(gw.url + "/#/device/cnc-2")
        await page.wait_for_selector('[data-testid="live-chart"] canvas', timeout=15000)
        await page.wait_for_selector('[data-testid="detail-state"][data-state="unplanned_stop"]', timeout=15000)
        points = await page.evaluate("S.chart.t.length")
        assert points > 10  # the history of the last 15 minutes
        await page.wait_for_function(f"S.chart.t.length > {points}", timeout=15000)  # live points arrive
        assert await page.locator("#d-values tr[data-tag]").count() >= 15
        assert await page.locator('[data-testid="timeline"] .seg').count() >= 3
        sparks = await page.locator("#d-values .spark canvas").count()
        assert sparks >= 10
        # another tag in the chart
        await page.click('#d-values tr[data-tag="spindle_load"]')
        await page.wait_for_function("S.chart && S.chart.tag === 'spindle_load'", timeout=15000)
        await page.click('#d-values tr[data-tag="spindle_temp"]')
        await page.wait_for_function("S.chart && S.chart.tag === 'spindle_temp' && S.chart.t.length > 10")
        # the stop lasts longer than breakdown_after_s (5 s here): a breakdown alarm on the page
        await page.wait_for_selector('#d-alarms [data-alarm-id="cnc-2:state:breakdown"][data-status="unack"]',
                                     timeout=10_000)
        await page.evaluate("window.scrollTo(0, 0)")
        await shot(page, "detail-cnc-2.png", full_page=True)
        await page.set_viewport_size({"width": 1024, "height": 1366})
        await page.wait_for_timeout(300)
        await shot(page, "detail-tablet.png")


async def test_operator_logs_in_and_acknowledges_an_alarm() -> None:
    chromium_or_skip()
    async with running_gateway() as gw, page_on(gw) as page:
        now = time.time()
        gw.plant.set_value("cnc-1", "spindle_temp", 64.0)
        gw.plant.step(now - 6)
        gw.plant.step(now)
        alarm_id = "cnc-1:spindle_temp:hi"
        assert gw.live.alarms.get(alarm_id).status == "unack"
        await page.goto(gw.url + "/")
        row = f'[data-alarm-id="{alarm_id}"]'
        await page.wait_for_selector(row, timeout=15000)
        await page.click(f'{row} button[data-ack]')
        await page.wait_for_selector("#login-name")
        await page.fill("#login-name", "olga")
        await page.fill("#login-password", "wrong-password")
        await page.click("#dialog-ok")
        await page.wait_for_selector("#dialog-error:has-text('wrong name or password')")
        await page.fill("#login-password", "shift-lead-1")
        await page.click("#dialog-ok")
        await page.wait_for_selector("#ack-note")
        await page.fill("#ack-note", "coolant level checked")
        await shot(page, "ack-dialog.png")
        await page.click("#dialog-ok")
        await page.wait_for_selector(f'{row}[data-status="acked"]', timeout=5000)
        assert await page.inner_text('[data-testid="user"]') == "olga"
        async with httpx.AsyncClient() as client:
            alarm = (await client.get(f"{gw.url}/api/v1/alarms/{alarm_id}")).json()
        assert (alarm["state"], alarm["acked_by"], alarm["ack_note"]) == ("acked", "olga", "coolant level checked")
        assert any(e.kind == "alarm_acknowledged" and e.attributes["user"] == "olga" for e in gw.agent.events)
        await shot(page, "alarm-acknowledged.png")


async def test_disconnected_banner_when_the_agent_stops() -> None:
    chromium_or_skip()
    async with running_gateway() as gw, page_on(gw) as page:
        await page.goto(gw.url + "/")
        await page.wait_for_selector("#link-state.live", timeout=5000)
        assert await page.is_hidden("#banner")
        gw.stop()
        await page.wait_for_selector("#banner", state="visible", timeout=10_000)
        assert "Disconnected" in await page.inner_text("#banner")
        await shot(page, "disconnected.png")
