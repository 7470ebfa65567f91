"""The status API against a fake agent view: devices and twins, history, alarms and operator actions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from edge_agent.model import Sample
from edge_agent.status.app import create_app
from edge_agent.status.live import LiveView
from tests.status.fakeplant import FakeAgent, FakePlant, demo_settings, wire

pytestmark = pytest.mark.asyncio


@pytest.fixture
def plant() -> FakePlant:
    agent = FakeAgent()
    plant = FakePlant(agent)
    wire(agent, plant)
    return plant


@pytest.fixture
async def client(plant: FakePlant) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(plant.agent)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        yield c


def live_of(plant: FakePlant) -> LiveView:
    assert plant.agent.live is not None
    return plant.agent.live


async def login(client: httpx.AsyncClient, name: str = "olga", password: str = "shift-lead-1") -> dict:  # type: ignore[type-arg]
    r = await client.post("/api/v1/login", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# -- the routes that were there before ----------------------------------------------------------------


async def test_health_status_latest_and_page(plant: FakePlant, client: httpx.AsyncClient) -> None:
    plant.step(time.time())
    assert (await client.get("/health")).json() == {"status": "ok"}
    assert (await client.get("/api/v1/status")).json()["gateway_id"] == "plant-a-gw1"
    latest = (await client.get("/api/v1/latest")).json()
    assert latest["cnc-1"]["state"]["value"] == 1
    page = await client.get("/")
    assert "Edge gateway" in page.text and "cdn" not in page.text.lower()
    for asset in ("/static/app.js", "/static/app.css", "/static/uPlot.iife.min.js", "/static/uPlot.min.css"):
        assert (await client.get(asset)).status_code == 200, asset


# -- devices and twins ----------------------------------------------------------------------------------


async def test_devices_overview_and_twin(plant: FakePlant, client: httpx.AsyncClient) -> None:
    now = time.time()
    plant.step(now)
    plant.stop("cnc-2", 21)
    plant.step(now + 1)
    devices = (await client.get("/api/v1/devices")).json()["devices"]
    assert [d["name"] for d in devices] == ["cnc-1", "cnc-2", "pack-1", "vib-1", "vib-2"]
    by_name = {d["name"]: d for d in devices}
    assert by_name["cnc-1"]["derived"]["state"]["category"] == "running"
    stopped = by_name["cnc-2"]["derived"]["state"]
    assert (stopped["category"], stopped["reason_text"]) == ("unplanned_stop", "spindle fault")
    assert stopped["since"] == now + 1
    assert by_name["vib-1"]["has_state"] is False and "vibration_rms" in by_name["vib-1"]["key_values"]
    twin = (await client.get("/api/v1/devices/cnc-2")).json()
    assert twin["reported"]["spindle_temp"]["unit"] == "degC"
    assert twin["meta"]["location"] == {"site": "plant-a", "area": "machining", "line": "cell-1"}
    assert twin["desired"] == {}
    assert (await client.get("/api/v1/devices/nope")).status_code == 404


async def test_history_downsampled_from_memory_and_from_a_query(plant: FakePlant, client: httpx.AsyncClient) -> None:
    t0 = time.time() - 100
    for i in range(100):
        plant.agent.emit([Sample("vib-1", "temperature", t0 + i, float(i % 10))])
    r = (await client.get("/api/v1/devices/vib-1/history", params={"tag": "temperature", "from": "-200",
                                                                    "points": 10})).json()
    assert r["source"] == "memory" and r["raw_points"] == 100 and len(r["t"]) <= 10
    assert min(r["min"]) == 0.0 and max(r["max"]) == 9.0 and r["unit"] == "degC"
    calls = []

    async def query(device: str, tag: str, start: float, end: float, limit: int) -> list[tuple[float, object]]:
        calls.append((device, tag, start, end, limit))
        return [(t0 + i, float(i)) for i in range(1000)]

    live_of(plant).history_query = query  # type: ignore[assignment]
    r = (await client.get("/api/v1/devices/vib-1/history", params={
        "tag": "temperature", "from": str(t0), "to": str(t0 + 999), "points": 50, "mode": "lttb"})).json()
    assert r["source"] == "buffer" and len(r["t"]) == 50 and r["t"][0] == t0 and r["t"][-1] == t0 + 999
    assert calls[0][:4] == ("vib-1", "temperature", t0, t0 + 999)
    iso = (await client.get("/api/v1/devices/vib-1/history", params={"tag": "temperature",
                                                                      "from": "2026-01-01T00:00:00Z"})).json()
    assert iso["from"] == 1767225600.0
    bad = await client.get("/api/v1/devices/vib-1/history", params={"tag": "temperature", "from": "yesterday"})
    assert bad.status_code == 422


async def test_timeline_and_events(plant: FakePlant, client: httpx.AsyncClient) -> None:
    now = time.time()
    plant.step(now - 20)
    plant.stop("cnc-1", 12)
    plant.step(now - 10)
    plant.resume("cnc-1")
    plant.step(now)
    tl = (await client.get("/api/v1/devices/cnc-1/timeline", params={"from": str(now - 30)})).json()
    assert [x["category"] for x in tl["segments"]] == ["running", "unplanned_stop", "running"]
    assert tl["segments"][1]["reason_text"] == "tool check"
    plant.disconnect("pack-1")
    events = (await client.get("/api/v1/devices/pack-1/events")).json()["events"]
    assert events[0]["kind"] == "device_disconnected"
    twin = (await client.get("/api/v1/devices/pack-1")).json()
    assert twin["derived"]["connection"]["state"] == "disconnected"


# -- alarms and access -----------------------------------------------------------------------------------


def raise_spindle_alarm(plant: FakePlant) -> str:
    now = time.time()
    plant.set_value("cnc-1", "spindle_temp", 65.0)
    plant.step(now - 10)
    plant.step(now)
    return "cnc-1:spindle_temp:hi"


async def test_ack_needs_a_login_and_is_recorded_with_the_user(plant: FakePlant, client: httpx.AsyncClient) -> None:
    alarm_id = raise_spindle_alarm(plant)
    active = (await client.get("/api/v1/alarms", params={"state": "active"})).json()["alarms"]
    assert [a["id"] for a in active] == [alarm_id] and active[0]["status"] == "unack"
    assert (await client.post(f"/api/v1/alarms/{alarm_id}/ack", json={})).status_code == 401
    await login(client)
    r = await client.post(f"/api/v1/alarms/{alarm_id}/ack", json={"note": "coolant checked"})
    assert r.status_code == 200 and r.json()["status"] == "acked" and r.json()["acked_by"] == "olga"
    assert (await client.get(f"/api/v1/alarms/{alarm_id}")).json()["state"] == "acked"
    assert (await client.post(f"/api/v1/alarms/{alarm_id}/ack", json={})).status_code == 409  # nothing left
    assert (await client.post("/api/v1/alarms/nope/ack", json={})).status_code == 404
    recorded = [e for e in plant.agent.events if e.kind == "alarm_acknowledged"]
    assert recorded[0].attributes["user"] == "olga" and recorded[0].attributes["note"] == "coolant checked"
    assert any(e.kind == "operator_login" and e.attributes["user"] == "olga" for e in plant.agent.events)
    twin = (await client.get("/api/v1/devices/cnc-1")).json()
    assert twin["derived"]["alarms"][0]["status"] == "acked"


async def test_shelve_and_unshelve(plant: FakePlant, client: httpx.AsyncClient) -> None:
    alarm_id = raise_spindle_alarm(plant)
    await login(client)
    r = await client.post(f"/api/v1/alarms/{alarm_id}/shelve", json={"duration_s": 900, "note": "probe swap"})
    assert r.status_code == 200 and r.json()["status"] == "shelved" and r.json()["shelved_by"] == "olga"
    assert (await client.post(f"/api/v1/alarms/{alarm_id}/shelve", json={"duration_s": 10**6})).status_code == 409
    r = await client.post(f"/api/v1/alarms/{alarm_id}/unshelve")
    assert r.json()["status"] == "unack"  # the temperature is still high: raised again
    kinds = [e.kind for e in plant.agent.events if e.kind.startswith("alarm_")]
    assert kinds[-3:] == ["alarm_shelved", "alarm_unshelved", "alarm_raised"]


async def test_roles_bearer_tokens_logout_and_wrong_passwords(plant: FakePlant, client: httpx.AsyncClient) -> None:
    alarm_id = raise_spindle_alarm(plant)
    viewer = await login(client, "victor", "viewer-pass")
    client.cookies.clear()
    headers = {"authorization": f"Bearer {viewer['token']}"}
    assert (await client.get("/api/v1/session", headers=headers)).json()["user"] == "victor"
    r = await client.post(f"/api/v1/alarms/{alarm_id}/ack", json={}, headers=headers)
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    assert (await client.post("/api/v1/login", json={"name": "olga", "password": "nope"})).status_code == 401
    assert (await client.post("/api/v1/login", json={"name": "ghost", "password": "x"})).status_code == 401
    failed = [e for e in plant.agent.events if e.kind == "operator_login_failed"]
    assert [e.attributes["user"] for e in failed] == ["olga", "ghost"]
    op = await login(client)
    assert (await client.post("/api/v1/logout", headers={"authorization": f"Bearer {op['token']}"})).status_code == 200
    client.cookies.clear()
    r = await client.post(f"/api/v1/alarms/{alarm_id}/ack", json={}, headers={"authorization": f"Bearer {op['token']}"})
    assert r.status_code == 401  # revoked at logout


async def test_repeated_wrong_passwords_lock_the_name() -> None:
    agent = FakeAgent()
    wire(agent, FakePlant(agent), demo_settings(login_max_failures=2, login_lockout_s=60))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(agent)), base_url="http://gw") as c:
        for _ in range(2):
            assert (await c.post("/api/v1/login", json={"name": "olga", "password": "bad"})).status_code == 401
        r = await c.post("/api/v1/login", json={"name": "olga", "password": "shift-lead-1"})
        assert r.status_code == 429


async def test_viewing_can_require_a_login() -> None:
    agent = FakeAgent()
    wire(agent, FakePlant(agent), demo_settings(open_viewing=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(agent)), base_url="http://gw") as c:
        assert (await c.get("/api/v1/devices")).status_code == 401
        assert (await c.get("/api/v1/stream")).status_code == 401
        assert (await c.get("/health")).status_code == 200  # for the supervisor and load balancers
        assert (await c.get("/")).status_code == 200  # the page, to log in from
        assert (await c.get("/api/v1/session")).json()["open_viewing"] is False
        await login(c)
        assert (await c.get("/api/v1/devices")).status_code == 200


# -- setpoints ------------------------------------------------------------------------------------------


async def test_setpoints_need_the_write_role_and_a_writable_tag(plant: FakePlant, client: httpx.AsyncClient) -> None:
    await login(client)  # an operator: may acknowledge, may not write
    r = await client.post("/api/v1/devices/cnc-1/setpoints", json={"tag": "feed_rate", "value": 1500})
    assert r.status_code == 403


async def test_setpoint_through_the_writer_and_its_status_in_desired() -> None:
    from dataclasses import replace

    from edge_agent.errors import ConnectorError
    from edge_agent.profiles import ModbusProfile
    from edge_agent.status.auth import hash_password
    from edge_agent.status.settings import UserEntry
    from tests.status.fakeplant import FakeDevice, demo_devices

    base = demo_devices()[0]
    assert isinstance(base.profile, ModbusProfile)
    tags = [t.model_copy(update={"writable": True, "min": 0.0, "max": 5000.0}) if t.name == "feed_rate" else t
            for t in base.profile.tags]
    device = FakeDevice("cnc-1", base.profile.model_copy(update={"tags": tags}), base.location)
    agent = FakeAgent([device])
    settings = demo_settings()
    settings = replace(settings, users=(UserEntry(name="erik", password_hash=hash_password("engineer-1", n=2**10),
                                                  role="engineer"),))
    written: list[tuple[str, str, object]] = []

    class Writer:
        async def write(self, device: str, tag: str, value: object) -> None:
            if value == 9999:
                raise ConnectorError("device did not confirm the write")
            written.append((device, tag, value))

    live = LiveView(agent.config.devices, settings, record=agent.record_event, writer=Writer())  # type: ignore[arg-type]
    agent.live = live
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(agent)), base_url="http://gw") as c:
        await login(c, "erik", "engineer-1")
        r = await c.post("/api/v1/devices/cnc-1/setpoints", json={"tag": "feed_rate", "value": 1500})
        assert r.status_code == 200 and r.json()["status"] == "written" and written == [("cnc-1", "feed_rate", 1500)]
        agent.emit([Sample("cnc-1", "feed_rate", time.time(), 1500.0)])
        desired = (await c.get("/api/v1/devices/cnc-1")).json()["desired"]["feed_rate"]
        assert (desired["status"], desired["user"]) == ("confirmed", "erik")
        failed = await c.post("/api/v1/devices/cnc-1/setpoints", json={"tag": "feed_rate", "value": 9999})
        assert failed.json()["status"] == "failed" and "confirm" in failed.json()["detail"]
        ro = await c.post("/api/v1/devices/cnc-1/setpoints", json={"tag": "spindle_temp", "value": 1})
        assert ro.status_code == 409
    kinds = [e.kind for e in agent.events if e.kind.startswith("setpoint_")]
    assert kinds == ["setpoint_requested", "setpoint_written", "setpoint_requested", "setpoint_failed"]
    assert all(e.attributes["user"] == "erik" for e in agent.events if e.kind.startswith("setpoint_"))


# -- an agent that does not feed a live view itself -----------------------------------------------------


async def test_an_unwired_agent_is_mirrored() -> None:
    from edge_agent.status.app import live_view_for
    from edge_agent.status.mirror import AgentMirror

    agent = FakeAgent()
    plant = FakePlant(agent)
    plant.step(time.time() - 5)  # values from before (the buffer's latest after a restart)
    live, fed = live_view_for(agent)
    assert not fed
    mirror = AgentMirror(agent, live)
    mirror.sync()
    assert live.registry.twins["cnc-1"].stale  # restored, not fresh
    assert mirror.sync() == 0
    plant.stop("cnc-2")
    plant.step(time.time())
    assert mirror.sync() > 0
    assert live.registry.twins["cnc-2"].state.category == "unplanned_stop"
    assert not live.registry.twins["cnc-1"].stale
    plant.disconnect("vib-1")
    mirror.sync()
    assert live.registry.twins["vib-1"].connection.state == "disconnected"
    assert any(e.kind == "twin_changed" for e in agent.events)  # recorded through the agent
