"""Parts counted one message at a time (``[oee] part_tag``): the profile option, the OEE engine, the machine
events, the offline analysis and, through the MQTT connector, a real Mosquitto broker."""

from __future__ import annotations

import sqlite3
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest

from edge_agent.errors import ConfigError
from edge_agent.model import Sample
from edge_agent.oee import LiveOee, compute, oee, read_samples_csv
from edge_agent.oee.events import MachineEvents
from edge_agent.profiles import OeeSignals, load_profile
from tests.conftest import free_port
from tests.integration.helpers import eventually, running_agent, write_config
from tests.oee.oee_testkit import DEVICE

PARTS = OeeSignals(run_tag="running", part_tag="part", ideal_cycle_time_s=10.0)


def rows(start: float) -> list[Sample]:
    return [
        Sample(DEVICE, "running", start, True),
        Sample(DEVICE, "part", start + 10, "ok"),
        Sample(DEVICE, "part", start + 20, "ok"),
        Sample(DEVICE, "part", start + 20, "OK"),  # two parts at one instant are two parts
        Sample(DEVICE, "part", start + 30, "nok"),
        Sample(DEVICE, "part", start + 40, True),
        Sample(DEVICE, "part", start + 45, "maybe"),  # neither good nor scrap: a bad value
        Sample(DEVICE, "part", start + 50, 0),
    ]


def test_each_message_is_one_part_good_or_scrap_by_its_value() -> None:
    live = LiveOee(DEVICE, PARTS)
    for s in rows(1000.0):
        live.feed(s)
    result = live.result(1000.0, 1060.0)
    assert (result.good_count, result.scrap_count, result.total_count) == (4, 2, 6)
    assert live.bad_values == 1
    assert result.performance == pytest.approx(10.0 * 6 / 60.0)
    # the offline computation over the same samples agrees
    assert oee(rows(1000.0), PARTS, None, 1000.0, 1060.0).as_dict() == result.as_dict()
    # windows count the parts of their instants
    assert live.result(1000.0, 1020.0).good_count == 1 and live.result(1020.0, 1021.0).good_count == 2


def test_part_messages_make_part_count_events() -> None:
    machine = MachineEvents(DEVICE, PARTS)
    events = [e for s in rows(1000.0) for e in machine.feed(s)]
    parts = [(e.ts, e.attributes) for e in events if e.kind == "part_count"]
    assert parts == [
        (1010.0, {"good": 1, "scrap": 0}),
        (1020.0, {"good": 1, "scrap": 0, "cycle_time_s": 10.0}),
        (1020.0, {"good": 1, "scrap": 0}),  # same instant: no time between them, no cycle time
        (1030.0, {"good": 0, "scrap": 1, "cycle_time_s": 10.0}),
        (1040.0, {"good": 1, "scrap": 0, "cycle_time_s": 10.0}),
        (1050.0, {"good": 0, "scrap": 1, "cycle_time_s": 10.0}),
    ]


def test_offline_csv_counts_repeated_rows_as_parts(tmp_path: Path) -> None:
    csv = tmp_path / "parts.csv"
    csv.write_text("ts,device,tag,value\n" + "".join(
        f"2025-03-03T06:00:{sec:02d}Z,{DEVICE},{tag},{value}\n"
        for sec, tag, value in ((0, "running", "true"), (10, "part", "ok"), (20, "part", "ok"), (30, "part", "ok"),
                                (40, "part", "nok"), (50, "part", "nok"))
    ))
    data = read_samples_csv(csv, PARTS)
    start = datetime(2025, 3, 3, 6, tzinfo=UTC)
    result = compute(data.device_tracks(DEVICE), None, start, start + timedelta(minutes=1))
    assert (result.good_count, result.scrap_count, data.problems) == (3, 2, [])


def profile_text(extra: str) -> str:
    return textwrap.dedent(f"""
    protocol = "mqtt"
    [profile]
    name = "assembly_cell"
    [mqtt]
    topic = "cells/{{device}}/parts"
    timestamp_field = "ts"
    [[tags]]
    name = "part"
    type = "string"
    field = "result"
    [[tags]]
    name = "running"
    type = "bool"
    topic = "cells/{{device}}/state"
    field = "running"
    [[tags]]
    name = "count"
    type = "int32"
    field = "count"
    [oee]
    run_tag = "running"
    ideal_cycle_time_s = 10
    {extra}
    """)


def test_the_profile_option_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "cell.toml"
    path.write_text(profile_text('part_tag = "parts"'))
    with pytest.raises(ConfigError, match=r"oee.part_tag names unknown tag 'parts' \(did you mean 'part'\?\)"):
        load_profile(path)
    path.write_text(profile_text('part_tag = "part"\ngood_counter = "count"'))
    with pytest.raises(ConfigError, match="leave out good_counter"):
        load_profile(path)
    path.write_text(profile_text('part_tag = "part"\npart_scrap_values = ["NOK", "ok"]'))
    with pytest.raises(ConfigError, match="both hold ok"):
        load_profile(path)
    path.write_text(profile_text('part_tag = "part"'))
    signals = load_profile(path).oee
    assert signals is not None and signals.part_tag == "part" and "nok" in signals.part_scrap_values


async def test_part_messages_through_mosquitto_count_in_the_agent(tmp_path: Path, mosquitto: str) -> None:
    device = f"cell-{uuid.uuid4().hex[:6]}"
    (tmp_path / "cell.toml").write_text(profile_text('part_tag = "part"'))
    path = write_config(tmp_path, f"""
    [behaviour]
    part_count_interval_s = 0

    [[devices]]
    name = "{device}"
    profile = "cell.toml"
    [devices.connection]
    broker = "{mosquitto}"
    qos = 1
    """, http_port=free_port())
    host, port = mosquitto.removeprefix("mqtt://").split(":")
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    pub.connect(host, int(port))
    pub.loop_start()
    start = time.time()
    try:
        async with running_agent(path, http=False) as agent:
            sink = agent.sinks[device]
            await eventually(lambda: sink.status.state == "connected", what="MQTT connection")
            infos = [pub.publish(f"cells/{device}/state", orjson.dumps({"ts": start, "running": True}), qos=1)]
            results = ["ok", "ok", "nok", "ok", "ok", "ok", "nok"]  # repeated values: each message a part
            for i, result in enumerate(results):
                doc = {"ts": start + 1 + i, "result": result}
                infos.append(pub.publish(f"cells/{device}/parts", orjson.dumps(doc), qos=1))
            for info in infos:
                info.wait_for_publish(5)
            engine = agent.oee_engines[device]
            await eventually(lambda: engine.result(start, start + 60).total_count == 7, what="7 parts counted")
            result = engine.result(start, start + 60)
            assert (result.good_count, result.scrap_count) == (5, 2)
    finally:
        pub.loop_stop()
        pub.disconnect()
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        counted = [orjson.loads(a) for (a,) in conn.execute(
            "SELECT attributes FROM events WHERE device = ? AND kind = 'part_count' ORDER BY seq", (device,))]
    assert sum(c["good"] for c in counted) == 5 and sum(c["scrap"] for c in counted) == 2
    assert len(counted) == 7
