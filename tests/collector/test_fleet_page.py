"""The collector's fleet page in headless Chromium against a real collector server and a hand-built fleet.

The page must show what the analytics API answers for the same window: overview
numbers, funnel steps, cohort cells, segment rows. Screenshots go to
``test-artifacts/``. In CI (CI=true) a missing Chromium or playwright fails.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_sync.schema import batch_id
from tests.collector.collector_testkit import gz
from tests.collector.fleet_data import GATEWAYS, OFFLINE, Fleet, fleet
from tests.collector.served_collector import served_collector
from tests.status.conftest import CHROMIUM_ARGS, chromium_or_skip

pytestmark = pytest.mark.timeout(90)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
KEY = "fleet-test-key"
PARTS = {
    "entity_key": "part_id",
    "steps": [
        {"kind": "part_loaded", "label": "loaded"},
        {"kind": "part_machined", "label": "machined"},
        {"kind": "part_inspected", "where": {"result": "ok"}, "label": "inspected OK"},
        {"kind": "part_packed", "label": "packed"},
    ],
}
ALARMS = {
    "entity_key": "occurrence_id",
    "steps": [{"kind": "alarm_raised"}, {"kind": "alarm_acknowledged"}, {"kind": "alarm_cleared"}],
}
DEVICE_COHORT = {
    "entity_key": "device",
    "first": {"kind": "device_connected"},
    "return": {"kind": "stop_ended", "where": {"category": "unplanned_stop"}},
}
ORDER_COHORT = {
    "entity_key": "order_id",
    "first": {"kind": "part_loaded"},
    "return": {"kind": "part_inspected", "where": {"result": "nok"}},
}


@contextlib.asynccontextmanager
async def loaded_collector(tmp_path: Path, data: Fleet) -> AsyncIterator[str]:
    """A collector holding ``data``: gateway batches, MES events, and one gateway silent for 2 h; yields its URL."""
    db = tmp_path / "collector.sqlite"
    async with served_collector(db, KEY) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        headers = {"x-api-key": KEY, "content-type": "application/json", "content-encoding": "gzip"}
        for i, gateway in enumerate(GATEWAYS):
            rows = [[e["seq"], e["id"], e["ts"], e["device"], e["kind"], e["attributes"]]
                    for e in data.gateway_events[gateway]]
            batch = {"schema_version": 1, "gateway_id": gateway, "batch_id": batch_id(gateway, "events", 1, len(rows)),
                     "stream": "events", "first_seq": 1, "last_seq": len(rows), "sent_at": time.time(),
                     "backlog": {"samples": 1500 * i, "events": i}, "rows": rows}
            answer = await client.post("/api/v1/batches", content=gz(batch), headers=headers)
            assert answer.status_code == 200, answer.text
        answer = await client.post("/api/v1/events/batch", json={"events": data.mes_events}, headers={"x-api-key": KEY})
        assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
        assert answer.json()["duplicates"] == 3
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("UPDATE gateways SET last_seen = ? WHERE gateway_id = ?", (data.end - 7200, OFFLINE))
        yield url


@contextlib.asynccontextmanager
async def browser_page(width: int = 1920, height: int = 1080) -> AsyncIterator[tuple[Any, Any, list[str]]]:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": width, "height": height})
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
            yield context, page, errors
            assert errors == [], errors
        finally:
            await browser.close()


async def shot(page: Any, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


async def api(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        answer = await client.request(method, path, json=body, headers={"x-api-key": KEY})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def attr(page: Any, selector: str, name: str) -> str:
    value = await page.get_attribute(selector, name)
    assert value is not None, selector
    return str(value)


async def assert_funnel(page: Any, expected: dict[str, Any]) -> None:
    await page.wait_for_selector(f'[data-testid="funnel"][data-entities="{expected["entities"]}"]')
    for step in expected["steps"]:
        selector = f'[data-testid="funnel-step-{step["step"]}"]'
        assert int(await attr(page, selector, "data-entities")) == step["entities"]
        assert (await page.inner_text(f"{selector} [data-testid=count]")) == f"{step['entities']:,}"
    assert await page.locator('[data-testid^="funnel-step-"]').count() == len(expected["steps"])


async def assert_cohort(page: Any, expected: dict[str, Any]) -> None:
    # the table is drawn again when another cohort is chosen: wait for its rows, not the last table's
    rows, last = len(expected["cohorts"]), expected["cohorts"][-1]["period"]
    await page.wait_for_function(
        """([rows, last]) => document.querySelectorAll('[data-testid^="cohort-row-"]').length === rows
            && document.querySelector(`[data-testid="cohort-row-${rows - 1}"]`)?.dataset.period === last""",
        arg=[rows, last], timeout=5_000,
    )
    assert await page.locator('[data-testid^="cohort-row-"]').count() == rows
    for i, cohort in enumerate(expected["cohorts"]):
        row = f'[data-testid="cohort-row-{i}"]'
        assert await attr(page, row, "data-period") == cohort["period"]
        assert await page.inner_text(f"{row} [data-testid=size]") == str(cohort["size"])
        for j, value in enumerate(cohort["values"]):
            shown = await attr(page, f'[data-testid="cohort-cell-{i}-{j}"]', "data-value")
            if value is None:
                assert shown == "null"
            else:
                assert math.isclose(float(shown), value, rel_tol=1e-9), (i, j, shown, value)


async def test_fleet_page_shows_what_the_api_answers(tmp_path: Path) -> None:
    chromium_or_skip()
    data = fleet(time.time() + 120)
    window = {"from": data.start, "to": data.end}
    query = f"from={data.start:.0f}&to={data.end:.0f}"
    async with loaded_collector(tmp_path, data) as url:
        overview = await api(url, "GET", f"/api/v1/analytics/overview?{query}")
        parts = await api(url, "POST", "/api/v1/analytics/funnel", {**window, **PARTS})
        alarms = await api(url, "POST", "/api/v1/analytics/funnel", {**window, **ALARMS})
        cohort_args = {**window, "period": "day", "periods": 3, "metric": "share"}
        devices = await api(url, "POST", "/api/v1/analytics/cohort", {**cohort_args, **DEVICE_COHORT})
        orders = await api(url, "POST", "/api/v1/analytics/cohort", {**cohort_args, **ORDER_COHORT})
        segments = await api(url, "GET", f"/api/v1/analytics/segments?{query}&k=4&period=hour")
        # the hand-built fleet is what the page is meant to show: check the answers are not trivial
        assert (overview["gateways_online"], overview["gateways_total"]) == (2, 3)
        assert next(s["entities"] for s in parts["steps"]) == 36 and parts["steps"][-1]["entities"] > 0
        assert next(s["entities"] for s in alarms["steps"]) == 18
        assert len(devices["cohorts"]) >= 2 and len(segments["segments"]) >= 2

        async with browser_page() as (context, page, _):
            # no key yet: the page asks for one; a wrong one is refused clearly
            await page.goto(f"{url}/?{query}")
            await page.wait_for_selector('[data-testid="key-panel"]:visible')
            await page.fill("#key-input", "not-a-key")
            await page.click("#key-form button[type=submit]")
            await page.wait_for_selector('[data-testid="key-error"]:visible')
            assert "refused" in (await page.inner_text('[data-testid="banner"]'))
            await page.fill("#key-input", KEY)
            await page.click("#key-form button[type=submit]")
            await page.wait_for_selector('body[data-loaded="ok"]')
            assert await page.is_hidden('[data-testid="key-panel"]')

            # overview
            assert await page.inner_text('[data-testid="kpi-gateways"]') == "2 / 3"
            assert await page.inner_text('[data-testid="kpi-devices"]') == str(len(overview["devices"]))
            assert await page.inner_text('[data-testid="kpi-backlog"]') == f"{overview['backlog_total']:,}"
            assert await page.inner_text('[data-testid="kpi-alarms"]') == f"{overview['alarms']['alarms']:,}"
            assert await page.inner_text('[data-testid="kpi-unacked"]') == str(overview["alarms"]["unacknowledged"])
            fleet_oee = overview["oee"][0]
            assert await page.inner_text('[data-testid="kpi-oee"]') == f"{100 * fleet_oee['oee']:.1f}%"
            for state, count in overview["devices_by_state"].items():
                assert int(await attr(page, f'[data-testid="state-{state}"]', "data-count")) == count
            assert overview["devices_by_state"]["gateway_offline"] == 2
            for g in overview["gateways"]:
                row = f'[data-testid="gateway-{g["gateway_id"]}"]'
                assert await page.inner_text(f"{row} [data-testid=online]") == ("online" if g["online"] else "offline")
                assert await page.inner_text(f"{row} [data-testid=backlog]") == f"{g['backlog_total']:,}"
            assert await page.locator('[data-testid="loss"]').count() == len(overview["worst_losses"])
            assert await page.locator('[data-testid="oee"] tr[data-testid^="oee-"]').count() == len(overview["oee"])
            line = next(g for g in overview["oee"] if g["level"] == "line" and g["line"] == "cell-1")
            cell = '[data-testid="oee-line-plant-a-machining-cell-1"] [data-testid=oee]'
            shown = await attr(page, cell, "data-value")
            assert math.isclose(float(shown), line["oee"])

            # funnels, cohorts, segments
            await assert_funnel(page, parts)
            await assert_cohort(page, devices)
            assert await page.locator('[data-testid^="segment-"][data-name]').count() == len(segments["segments"])
            for seg in segments["segments"]:
                row = f'[data-testid="segment-{seg["id"]}"]'
                assert await attr(page, row, "data-name") == seg["name"]
                assert int(await attr(page, row, "data-size")) == seg["size"]
                assert await page.inner_text(f"{row} [data-testid=members]") == ", ".join(seg["devices"])
            await shot(page, "fleet-1080p.png", full_page=True)

            await page.select_option("#funnel-choice", "alarms")
            await assert_funnel(page, alarms)
            await page.select_option("#cohort-choice", "orders")
            first_period = orders["cohorts"][0]["period"]
            await page.wait_for_selector(f'[data-testid="cohort-row-0"][data-period="{first_period}"]')
            await assert_cohort(page, orders)

            # the key is kept: a reload needs no key; a tablet shows the same page
            await page.set_viewport_size({"width": 1024, "height": 768})
            await page.reload()
            await page.wait_for_selector('body[data-loaded="ok"]')
            await shot(page, "fleet-tablet.png")

            # a window without data says so, section by section
            await page.goto(f"{url}/?from=1000000000&to=1000003600")
            await page.wait_for_selector('body[data-loaded="ok"]')
            for section in ("funnel", "cohort", "segments", "oee", "states"):
                assert await attr(page, f"#{section}-status", "data-state") == "empty", section

            # a link may carry the key in its fragment, which the page keeps and removes from the address
            fresh = await context.browser.new_context()
            try:
                linked = await fresh.new_page()
                await linked.goto(f"{url}/?{query}#key={KEY}")
                await linked.wait_for_selector('body[data-loaded="ok"]')
                assert "#" not in linked.url
                assert await linked.inner_text('[data-testid="kpi-gateways"]') == "2 / 3"
            finally:
                await fresh.close()


async def test_page_and_assets_are_served_without_a_key(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset, kind in (("fleet.js", "text/javascript"), ("fleet.css", "text/css")):
        assert f"/static/fleet/{asset}" in page.text
        answer = await client.get(f"/static/fleet/{asset}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
    assert (await client.get("/static/fleet/..%2Fapp.py")).status_code == 404
    assert (await client.get("/static/fleet/nothing.js")).status_code == 404
    assert (await client.get("/api/v1/analytics/overview?from=0&to=1")).status_code == 401
    assert "/" not in (await client.get("/openapi.json")).json()["paths"]
