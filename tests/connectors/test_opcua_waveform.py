"""OPC UA array nodes of waveform tags, read from the simulator's asyncua server by the connector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asyncua import ua
from connector_testkit import FakeSink, Ready, free_port, make_device, stop_task, wait_until

from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.connectors.opcua.connector import OpcuaConnector
from edge_agent.connectors.opcua.values import NodeTags, Waveforms, to_samples
from edge_agent.model import Quality
from edge_agent.profiles import OpcuaProfile
from simulators.bearing import WAVEFORM_RATE_HZ, VibrationSensor
from simulators.opcua_server import PackagingOpcuaServer

PROFILE = {
    "protocol": "opcua",
    "profile": {"name": "vibration_waveform_opcua"},
    "tags": [
        {"name": "shaft_speed", "unit": "rpm", "node_id": "ns=2;s={device}.ShaftSpeed"},
        {"name": "vib", "unit": "g", "browse_path": "2:{device}/2:Acceleration",
         "waveform": {"sample_rate_hz": WAVEFORM_RATE_HZ, "features": ["rms", "kurtosis", "bearing"],
                      "bearing": {"balls": 9, "ball_diameter": 7.94, "pitch_diameter": 39.04,
                                  "shaft_tag": "shaft_speed", "shaft_unit": "rpm"}}},
    ],
}
FEATURES = {"vib.rms", "vib.kurtosis", "vib.ftf_energy", "vib.bpfo_energy", "vib.bpfi_energy", "vib.bsf_energy"}


@pytest.fixture
async def server() -> AsyncIterator[PackagingOpcuaServer]:
    sensor = VibrationSensor("vib-1", seed=2, failure_after_s=1000.0)
    sensor.t = 850.0
    async with PackagingOpcuaServer([], port=free_port(), sensors=[sensor], waveform_points=2048) as srv:
        yield srv


def connector(url: str, **conn: Any) -> OpcuaConnector:
    settings = {"url": url, "publishing_interval_ms": 50, "poll_interval_s": 0.1, "timeout_s": 2.0,
                "reconnect_delay_s": 0.2, "watchdog_interval_s": 1.0} | conn
    return OpcuaConnector(make_device("vib-1", OpcuaProfile.model_validate(PROFILE), OpcuaConnection(**settings)),
                          "gw-1")


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_array_nodes_become_feature_samples(server: PackagingOpcuaServer, sink: FakeSink, mode: str) -> None:
    task = asyncio.create_task(connector(server.url, mode=mode).run(sink, Ready()))
    try:
        await wait_until(lambda: set(sink.latest()) >= FEATURES, 10, "the features of a window")
        await server.update()  # a new window and shaft speed
        await wait_until(lambda: len(sink.values_of("vib.rms")) >= 2, 5, "a second window")
        latest = sink.latest()
        assert "vib" not in latest  # the array itself is never a sample
        assert latest["shaft_speed"].value == pytest.approx(1797.0, rel=0.02)
        assert latest["vib.bpfo_energy"].value > 5 * latest["vib.bpfi_energy"].value  # the outer race defect
        assert latest["vib.kurtosis"].value > 3.0
        assert latest["vib.rms"].ts > 1.6e9 and latest["vib.rms"].quality is Quality.GOOD
        assert sink.status.errors == 0
    finally:
        await stop_task(task)


async def test_a_bad_array_is_counted_and_ingestion_goes_on(
    server: PackagingOpcuaServer, sink: FakeSink, caplog: pytest.LogCaptureFixture
) -> None:
    assert server._server is not None
    accel = server._sensor_nodes[0][1]
    task = asyncio.create_task(connector(server.url).run(sink, Ready()))
    try:
        await wait_until(lambda: "vib.rms" in sink.latest(), 10, "the first window")
        short = ua.DataValue(ua.Variant([1.0, 2.0, 3.0], ua.VariantType.Double))
        await server._server.write_attribute_value(accel, short)
        await wait_until(lambda: sink.status.errors >= 1, 5, "the short window counted")
        assert "bad waveform on node ns=2;s=vib-1.Acceleration (tag vib, 1 so far): 3 points" in caplog.text
        before = len(sink.values_of("vib.rms"))
        await server.update()
        await wait_until(lambda: len(sink.values_of("vib.rms")) > before, 5, "a good window after the bad one")
        assert sink.calls == ["connected"]
    finally:
        await stop_task(task)


def test_a_bad_status_without_a_value_records_bad_feature_samples() -> None:
    profile = OpcuaProfile.model_validate(PROFILE)
    tags = NodeTags("ns=2;s=vib-1.Acceleration", [profile.tags[1]])
    tags.waveforms = Waveforms(profile.tags)
    dv = ua.DataValue(ua.Variant(None), StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
    samples, failed = to_samples("vib-1", tags, dv, 10.0)
    assert failed == 0
    assert {s.tag for s in samples} == FEATURES
    assert {(s.value, s.quality, s.ts) for s in samples} == {(0.0, Quality.BAD, 10.0)}
