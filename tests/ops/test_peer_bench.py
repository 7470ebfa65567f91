"""The pure parts of bench/peers/thingsboard.py: both gateways' configs from one plant description,
and the counting of what arrives upstream (no install, no processes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.peers.plan import (
    MQTT_PUBACK,
    TB_TELEMETRY_TOPIC,
    ModbusPlant,
    MqttLoad,
    UpstreamCounter,
    agent_config,
    agent_modbus_devices,
    agent_modbus_profile,
    agent_mqtt_devices,
    agent_mqtt_profile,
    bench_tags,
    delivery,
    missing_ranges,
    mqtt_publish_qos1,
    mqtt_remaining_length,
    mqtt_split_packets,
    mqtt_topic_field,
    rate,
    ratio,
    render_table,
    tb_gateway_config,
    tb_modbus_config,
    tb_mqtt_config,
    tb_required_pymodbus,
    tb_rpc_reply,
    telemetry_points,
)
from edge_agent.config import load_config
from edge_agent.profiles import ModbusProfile, MqttProfile, load_profile

PLANT = ModbusPlant("127.0.0.1", 5020)
LOAD = MqttLoad("127.0.0.1", 1884, rate=2000)


def test_bench_tags_do_not_overlap() -> None:
    tags = bench_tags(50)
    assert len(tags) == 50 and len({t.name for t in tags}) == 50
    used: set[tuple[str, int]] = set()
    for tag in tags:
        cells = {(tag.table, tag.address + i) for i in range(tag.registers)}
        assert not cells & used, tag
        used |= cells
    assert sum(t.table == "coil" for t in tags) == 5
    assert PLANT.holding_size() == max(a for table, a in used if table == "holding") + 1
    assert PLANT.datapoints_per_s(100) == 5000.0
    with pytest.raises(ValueError, match="multiple of 10"):
        bench_tags(55)


def test_both_gateways_read_the_same_tags(tmp_path: Path) -> None:
    tb = tb_modbus_config(PLANT, poll_ms=100)["master"]["slaves"]
    assert [s["unitId"] for s in tb] == list(range(1, 11))
    assert {s["pollPeriod"] for s in tb} == {100}
    (tmp_path / "bench_plc.toml").write_text(agent_modbus_profile(PLANT))
    profile = load_profile(tmp_path / "bench_plc.toml")
    assert isinstance(profile, ModbusProfile)
    ours = {t.name: (t.table, t.address, t.type) for t in profile.tags}
    tb_types = {"16uint": "uint16", "16int": "int16", "32float": "float32", "32uint": "uint32", "bits": "bool"}
    for slave in tb:
        theirs = {e["tag"]: ("coil" if e["functionCode"] == 1 else "holding", e["address"], tb_types[e["type"]])
                  for e in slave["timeseries"]}
        assert theirs == ours
        assert all(e["objectsCount"] == (2 if e["type"].startswith("32") else 1) for e in slave["timeseries"])
    devices = agent_modbus_devices(PLANT, 100)
    assert [d["name"] for d in devices] == [s["deviceName"] for s in tb]


def test_agent_config_is_valid(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "bench_plc.toml").write_text(agent_modbus_profile(PLANT))
    (tmp_path / "profiles" / "bench_sensor.toml").write_text(agent_mqtt_profile(LOAD))
    devices = agent_modbus_devices(PLANT, 1000) + agent_mqtt_devices(LOAD)
    text = agent_config(data_dir=str(tmp_path / "data"), http_port=18080, collector_url="http://127.0.0.1:18081",
                        api_key="k", devices=devices)
    (tmp_path / "agent.toml").write_text(text)
    config = load_config(tmp_path / "agent.toml")
    assert [d.name for d in config.devices] == [d["name"] for d in devices]
    assert config.devices[0].connection.unit_id == 1  # type: ignore[union-attr]
    assert config.devices[0].connection.poll_interval_s == 1.0  # type: ignore[union-attr]
    sensor = config.devices[-1].profile
    assert isinstance(sensor, MqttProfile)
    assert [t.name for t in sensor.tags] == ["seq", *LOAD.fields]


def test_tb_gateway_and_mqtt_config() -> None:
    default: dict[str, Any] = {"thingsboard": {"host": "thingsboard.cloud", "port": 1883, "security": {"type": "x"}},
               "storage": {"type": "file"}, "connectors": []}
    config = tb_gateway_config(default, "127.0.0.1", 1999, "tok", [("mqtt", "bench mqtt", "mqtt.json")], "sqlite")
    assert default["thingsboard"]["host"] == "thingsboard.cloud"  # the default is not changed
    assert (config["thingsboard"]["host"], config["thingsboard"]["port"]) == ("127.0.0.1", 1999)
    assert config["thingsboard"]["security"] == {"type": "accessToken", "accessToken": "tok"}
    assert config["storage"]["type"] == "sqlite"
    assert config["connectors"] == [{"type": "mqtt", "name": "bench mqtt", "configuration": "mqtt.json"}]
    with pytest.raises(ValueError, match="storage"):
        tb_gateway_config(default, "h", 1, "t", [], "file")

    mapping = tb_mqtt_config(LOAD)["mapping"][0]
    assert mapping["topicFilter"] == "benchpeer/+/telemetry"
    topic = LOAD.topic(13)
    match = re.search(mapping["converter"]["deviceInfo"]["deviceNameExpression"], topic)
    assert match is not None and match.group(0) == "s03"
    keys = [t["key"] for t in mapping["converter"]["timeseries"]]
    assert keys == ["seq", *LOAD.fields]
    message = LOAD.message(13, 1.0)
    assert set(keys) <= set(message) and message["seq"] == 13
    assert LOAD.datapoints_per_message == len(keys)


def test_tb_install_details() -> None:
    source = "import x\ninstallation_required = False\nrequired_version = '3.9.2'\n"
    assert tb_required_pymodbus(source) == "3.9.2"
    assert tb_required_pymodbus("nothing here") is None
    reply = tb_rpc_reply("v1/devices/me/rpc/request/7", b'{"method": "getSessionLimits", "params": {}}')
    assert reply is not None and reply[0] == "v1/devices/me/rpc/response/7"
    assert "rateLimits" in reply[1]
    assert tb_rpc_reply("v1/devices/me/rpc/request/7", b'{"method": "other"}') is None
    assert tb_rpc_reply(TB_TELEMETRY_TOPIC, b"{}") is None


def test_counting_telemetry() -> None:
    payload = json.dumps({"s01": [{"ts": 1, "values": {"seq": 1, "temperature": 20.0}},
                                  {"ts": 2, "values": {"seq": 11, "temperature": 21.0}}],
                          "plc-01": {"t000_uint16": 5}}).encode()
    assert telemetry_points(payload) == [("s01", {"seq": 1, "temperature": 20.0}),
                                         ("s01", {"seq": 11, "temperature": 21.0}), ("plc-01", {"t000_uint16": 5})]
    counter = UpstreamCounter()
    counter.add(payload, now=5.0)
    counter.add(payload, now=6.0)
    counter.add(b"not json")
    counter.add(b"[1, 2]")
    assert (counter.total(), counter.messages, counter.malformed, counter.first_at) == (10, 2, 2, 5.0)
    assert sorted(counter.seq_snapshot()) == [1, 1, 11, 11]
    counter.reset()
    assert counter.total() == 0 and counter.seq_snapshot() == []


def test_delivery_counts_unique_duplicates_and_loss() -> None:
    # published 0..9; the gateway subscribed at 2; 5 and 6 were lost; 3 came twice; 42 was never published
    result = delivery([2, 3, 3, 4, 7, 8, 9, 42], published=10)
    assert (result.expected, result.unique, result.duplicates, result.lost) == (8, 6, 1, 2)
    assert result.loss_ratio == 0.25
    assert delivery([], published=4).lost == 4
    # two publishers: lane 0 sends 0, 2, 4, ... and lane 1 sends 1, 3, 5, ...; 3 acknowledged each
    assert LOAD.seq(1, 2, 2) == 5
    two = delivery([2, 4, 1, 3, 3, 9], published=[3, 3])
    assert (two.expected, two.unique, two.duplicates, two.lost) == (5, 4, 1, 1)  # 5 lost, 9 never published
    assert delivery(range(10), published=10).as_dict() == {"expected": 10, "unique": 10, "duplicates": 0,
                                                            "lost": 0, "loss_ratio": 0.0}


def test_missing_ranges() -> None:
    # one publisher: 0..19 published, 3-5 and 12 missing, the gateway subscribed at 1
    delivered = [s for s in range(1, 20) if s not in (3, 4, 5, 12)]
    assert missing_ranges(delivered, 20) == [(3, 5, 3), (12, 12, 1)]
    # two publishers lose the same stretch: one run across both lanes
    delivered = [s for s in range(0, 20) if not 6 <= s <= 11]
    assert missing_ranges(delivered, [10, 10]) == [(6, 11, 6)]
    assert missing_ranges(range(10), 10) == []


def test_rates_ratios_and_table() -> None:
    samples = [(0.0, 0.0), (1.0, 100.0), (2.0, 300.0), (3.0, 600.0)]
    assert rate(samples, 1.0, 3.0) == 250.0
    with pytest.raises(ValueError):
        rate(samples, 5.0, 6.0)
    assert ratio(10.0, 4.0) == 2.5 and ratio(1.0, 0.0) is None and ratio(None, 1.0) is None
    table = render_table([{"scenario": "a", "x": 1.234, "y": None}, {"scenario": "bb", "x": 12345.6, "y": 3}])
    lines = table.splitlines()
    assert lines[0].split() == ["scenario", "x", "y"]
    assert lines[2].split() == ["a", "1.23", "-"] and lines[3].split() == ["bb", "12346", "3"]


def test_load_generator_packets() -> None:
    """The publishers write MQTT 3.1.1 packets themselves: lengths, a PUBLISH split from a partial read, PUBACKs."""
    assert mqtt_remaining_length(0) == b"\x00" and mqtt_remaining_length(127) == b"\x7f"
    assert mqtt_remaining_length(128) == b"\x80\x01" and mqtt_remaining_length(16_384) == b"\x80\x80\x01"
    packet = mqtt_publish_qos1(mqtt_topic_field("a/b"), b"x" * 300, 7)
    assert packet[0] == 0x32 and packet.endswith(b"x" * 300)
    assert mqtt_split_packets(packet + packet[:5]) == ([0x32], len(packet))  # the second one is incomplete
    assert mqtt_split_packets(b"\x40\x02\x00\x01\xd0") == ([MQTT_PUBACK], 4)
    with pytest.raises(ValueError):
        mqtt_publish_qos1(mqtt_topic_field("a/b"), b"x", 0)
