"""Pure parts of the side-by-side benchmarks: one plant description, each gateway's config made
from it, and the counting of what arrives upstream.

No I/O in here: :mod:`bench.peers.thingsboard` starts the processes and feeds these functions.

* :class:`ModbusPlant` is N Modbus devices (unit ids 1..N on one port) with the same tags each;
  :func:`tb_modbus_config` and :func:`agent_modbus_profile` describe it to each gateway.
* :class:`MqttLoad` is a fleet of sensors publishing JSON on ``<prefix>/<sensor>/telemetry``;
  every message carries a global sequence number ``seq`` so loss and duplication can be counted.
* :class:`UpstreamCounter` parses what a ThingsBoard gateway publishes on ``v1/gateway/telemetry``;
  :func:`delivery` turns delivered sequence numbers into unique / duplicated / lost counts.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

TB_TELEMETRY_TOPIC = "v1/gateway/telemetry"
TB_RPC_REQUEST_TOPIC = "v1/devices/me/rpc/request/"
TB_RPC_RESPONSE_TOPIC = "v1/devices/me/rpc/response/"

# our tag types -> (ThingsBoard type, Modbus registers)
_TB_TYPES: dict[str, tuple[str, int]] = {
    "uint16": ("16uint", 1),
    "int16": ("16int", 1),
    "uint32": ("32uint", 2),
    "float32": ("32float", 2),
    "bool": ("bits", 1),
}


@dataclass(frozen=True)
class RegisterTag:
    """One value in a device's memory (0-based PDU address)."""

    name: str
    table: str  # "holding" or "coil"
    address: int
    type: str  # a key of _TB_TYPES

    @property
    def registers(self) -> int:
        return _TB_TYPES[self.type][1]


def bench_tags(count: int = 50) -> tuple[RegisterTag, ...]:
    """``count`` tags of a PLC: 40% uint16, 20% int16, 20% float32, 10% uint32 holding registers, 10% coils."""
    if count < 10 or count % 10:
        raise ValueError(f"tag count must be a multiple of 10 (>= 10), got {count}")
    mix = [("uint16", 4), ("int16", 2), ("float32", 2), ("uint32", 1)]
    tags: list[RegisterTag] = []
    address = 0
    for type_, tenths in mix:
        for _ in range(count * tenths // 10):
            tag = RegisterTag(f"t{len(tags):03d}_{type_}", "holding", address, type_)
            tags.append(tag)
            address += tag.registers
    for bit in range(count // 10):
        tags.append(RegisterTag(f"t{len(tags):03d}_bool", "coil", bit, "bool"))
    return tuple(tags)


@dataclass(frozen=True)
class ModbusPlant:
    """``devices`` Modbus TCP devices on one host:port (unit ids 1..devices), each with ``tags``."""

    host: str
    port: int
    devices: int = 10
    tags: tuple[RegisterTag, ...] = field(default_factory=bench_tags)

    def device_name(self, unit: int) -> str:
        return f"plc-{unit:02d}"

    def datapoints_per_s(self, poll_ms: int) -> float:
        return self.devices * len(self.tags) * 1000.0 / poll_ms

    def holding_size(self) -> int:
        return max((t.address + t.registers for t in self.tags if t.table == "holding"), default=0)

    def coil_size(self) -> int:
        return max((t.address + 1 for t in self.tags if t.table == "coil"), default=0)


@dataclass(frozen=True)
class MqttLoad:
    """``sensors`` sensors publishing JSON round-robin at ``rate`` messages/s in total."""

    host: str
    port: int
    rate: int
    sensors: int = 10
    prefix: str = "benchpeer"
    fields: tuple[str, ...] = ("temperature", "vibration", "pressure", "battery")

    @property
    def datapoints_per_message(self) -> int:
        return len(self.fields) + 1  # the fields and seq

    def topic(self, seq: int) -> str:
        return f"{self.prefix}/s{seq % self.sensors:02d}/telemetry"

    def seq(self, lane: int, lanes: int, index: int) -> int:
        """The seq of message ``index`` of publisher ``lane`` out of ``lanes``."""
        return lane + index * lanes

    def message(self, seq: int, ts: float) -> dict[str, Any]:
        """Message number ``seq``: its values are derived from seq, so they differ from one to the next."""
        doc: dict[str, Any] = {"seq": seq, "ts": round(ts, 3)}
        for i, name in enumerate(self.fields):
            doc[name] = round(20.0 + i + (seq % 1000) / 100.0, 2)
        return doc


# -- the load generator's MQTT packets (3.1.1) ---------------------------------------------------
# The publishers write these packets themselves: a paho client costs about 45-60 us of CPU per QoS 1
# message here, which on a 2-core machine left too little CPU for the gateway under test.

MQTT_PUBACK = 0x40


def _mqtt_str(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def mqtt_remaining_length(n: int) -> bytes:
    """The variable-length "remaining length" field of an MQTT fixed header."""
    if not 0 <= n <= 268_435_455:
        raise ValueError(f"MQTT remaining length out of range: {n}")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_connect_packet(client_id: str) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, keep-alive off (the publisher never goes idle)."""
    body = _mqtt_str("MQTT") + bytes([4, 0x02, 0, 0]) + _mqtt_str(client_id)
    return b"\x10" + mqtt_remaining_length(len(body)) + body


def mqtt_publish_qos1(topic: bytes, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH at QoS 1 of ``payload`` on ``topic`` (UTF-8 with its 2-byte length already) as ``packet_id``."""
    if not 1 <= packet_id <= 0xFFFF:
        raise ValueError(f"MQTT packet id must be 1..65535, got {packet_id}")
    size = len(topic) + 2 + len(payload)
    return b"\x32" + mqtt_remaining_length(size) + topic + packet_id.to_bytes(2, "big") + payload


def mqtt_topic_field(topic: str) -> bytes:
    """``topic`` as the length-prefixed field :func:`mqtt_publish_qos1` takes."""
    return _mqtt_str(topic)


def mqtt_split_packets(buffer: bytes | bytearray) -> tuple[list[int], int]:
    """The packet types (first byte) of the complete packets at the start of ``buffer`` and the
    number of bytes they take; an incomplete packet at the end is left for the next read."""
    types: list[int] = []
    pos, end = 0, len(buffer)
    while pos + 2 <= end:
        length, shift, i = 0, 0, pos + 1
        while True:
            if i >= end:
                return types, pos
            byte = buffer[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ValueError("malformed MQTT remaining length")
        if i + length > end:
            break
        types.append(buffer[pos])
        pos = i + length
    return types, pos


# -- ThingsBoard IoT Gateway config ----------------------------------------------------------


def tb_gateway_config(
    default: dict[str, Any],
    host: str,
    port: int,
    token: str,
    connectors: Sequence[tuple[str, str, str]],
    storage: str = "memory",
) -> dict[str, Any]:
    """Its ``tb_gateway.json``: the package's default with the upstream broker, the access token,
    ``connectors`` as (type, name, file) and the storage (``memory`` or ``sqlite``) replaced."""
    config = json.loads(json.dumps(default))  # deep copy of plain JSON
    tb = config["thingsboard"]
    tb["host"], tb["port"] = host, port
    tb["security"] = {"type": "accessToken", "accessToken": token}
    tb["remoteShell"] = False
    tb["remoteConfiguration"] = False
    if storage == "memory":
        config["storage"] = {"type": "memory", "read_records_count": 100, "max_records_count": 100_000}
    elif storage == "sqlite":
        config["storage"] = {"type": "sqlite", "data_file_path": "./data/data.db",
                             "messages_ttl_check_in_hours": 1, "messages_ttl_in_days": 7}
    else:
        raise ValueError(f"storage must be 'memory' or 'sqlite', got {storage!r}")
    config["connectors"] = [{"type": t, "name": n, "configuration": f} for t, n, f in connectors]
    return config


def tb_modbus_config(plant: ModbusPlant, poll_ms: int) -> dict[str, Any]:
    """Its ``modbus.json``: one slave per device, every tag a time series read every ``poll_ms``."""
    slaves = []
    for unit in range(1, plant.devices + 1):
        timeseries = []
        for tag in plant.tags:
            tb_type, registers = _TB_TYPES[tag.type]
            entry: dict[str, Any] = {"tag": tag.name, "type": tb_type, "address": tag.address,
                                     "objectsCount": registers, "functionCode": 1 if tag.table == "coil" else 3}
            if tag.table == "coil":
                entry["bitTargetType"] = "bool"
            timeseries.append(entry)
        slaves.append({
            "host": plant.host, "port": plant.port, "type": "tcp", "method": "socket", "unitId": unit,
            "deviceName": plant.device_name(unit), "deviceType": "bench-plc", "timeout": 35,
            "byteOrder": "BIG", "wordOrder": "BIG", "retries": 3, "retryOnEmpty": True, "retryOnInvalid": True,
            "pollPeriod": poll_ms, "connectAttemptTimeMs": 500, "connectAttemptCount": 5,
            "waitAfterFailedAttemptsMs": 1000, "attributes": [], "timeseries": timeseries,
            "attributeUpdates": [], "rpc": [],
        })
    return {"master": {"slaves": slaves}}


def tb_mqtt_config(load: MqttLoad) -> dict[str, Any]:
    """Its ``mqtt.json``: one mapping for the sensors' topics, the device named from the topic."""
    prefix = re.escape(load.prefix)
    keys = ("seq", *load.fields)
    return {
        "broker": {
            "host": load.host, "port": load.port, "clientId": "tb-bench-gateway", "version": 5,
            "maxMessageNumberPerWorker": 10, "maxNumberOfWorkers": 100, "cleanSession": True,
            "cleanStart": True, "sessionExpiryInterval": 0, "security": {"type": "anonymous"},
        },
        "mapping": [{
            "topicFilter": f"{load.prefix}/+/telemetry",
            "subscriptionQos": 1,
            "converter": {
                "type": "json",
                "deviceInfo": {
                    "deviceNameExpressionSource": "topic",
                    "deviceNameExpression": f"(?<={prefix}/)(.*?)(?=/telemetry)",
                    "deviceProfileExpressionSource": "constant",
                    "deviceProfileExpression": "bench-sensor",
                },
                "sendDataOnlyOnChange": False,
                "timeout": 60000,
                "attributes": [],
                "timeseries": [{"type": "integer" if k == "seq" else "double", "key": k, "value": f"${{{k}}}"}
                               for k in keys],
            },
        }],
        "requestsMapping": {},
    }


def tb_required_pymodbus(source: str) -> str | None:
    """The pymodbus version its Modbus connector pip-installs at import time (read from its source)."""
    match = re.search(r"^required_version\s*=\s*['\"]([^'\"]+)['\"]", source, re.MULTILINE)
    return match.group(1) if match else None


def tb_rpc_reply(topic: str, payload: bytes | bytearray) -> tuple[str, dict[str, Any]] | None:
    """The answer a ThingsBoard server gives to the gateway's client-side RPC, as (topic, document).

    The gateway sends nothing upstream before the server has answered ``getSessionLimits``; the
    answer here is that of a server whose tenant profile sets no rate limits (64 KiB payloads,
    100 messages in flight). Other RPCs get ``None`` (no answer).
    """
    if not topic.startswith(TB_RPC_REQUEST_TOPIC):
        return None
    request_id = topic[len(TB_RPC_REQUEST_TOPIC):]
    try:
        request = json.loads(payload)
    except ValueError:
        return None
    if not request_id.isdigit() or not isinstance(request, dict) or request.get("method") != "getSessionLimits":
        return None
    limits = {"maxPayloadSize": 65536, "maxInflightMessages": 100, "rateLimits": {}, "gatewayRateLimits": {}}
    return TB_RPC_RESPONSE_TOPIC + request_id, limits


# -- our agent's config ----------------------------------------------------------------------


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string for these values


def agent_modbus_profile(plant: ModbusPlant, name: str = "bench_plc") -> str:
    """A device profile (TOML) with the plant's tags."""
    lines = ['protocol = "modbus"', "", "[profile]", f"name = {_toml_str(name)}",
             'vendor = "bench"', 'model = "bench PLC"', ""]
    for tag in plant.tags:
        lines += ["[[tags]]", f"name = {_toml_str(tag.name)}", f"type = {_toml_str(tag.type)}",
                  f"table = {_toml_str(tag.table)}", f"address = {tag.address}", ""]
    return "\n".join(lines)


def agent_mqtt_profile(load: MqttLoad, name: str = "bench_sensor") -> str:
    """A device profile (TOML): one fleet entry, the sensor named by the topic's second segment."""
    lines = ['protocol = "mqtt"', "", "[profile]", f"name = {_toml_str(name)}", 'vendor = "bench"',
             'model = "bench sensor"', "", "[mqtt]", f"topic = {_toml_str(load.prefix + '/+/telemetry')}",
             'timestamp_field = "ts"', "device_from_topic = 1", "",
             "[[tags]]", 'name = "seq"', 'type = "int64"', 'field = "seq"', ""]
    for name_ in load.fields:
        lines += ["[[tags]]", f"name = {_toml_str(name_)}", f"field = {_toml_str(name_)}", ""]
    return "\n".join(lines)


def agent_config(
    *,
    data_dir: str,
    http_port: int,
    collector_url: str,
    api_key: str,
    devices: Sequence[dict[str, Any]],
    gateway_id: str = "bench-gw",
) -> str:
    """The agent's TOML config; ``devices`` are dicts with name, profile and a connection dict."""
    lines = [f"gateway_id = {_toml_str(gateway_id)}", f"data_dir = {_toml_str(data_dir)}",
             'profile_dirs = ["profiles"]', 'log_level = "warning"', "",
             "[http]", f'listen = "127.0.0.1:{http_port}"', "",
             "[buffer]", "max_rows = 5_000_000", 'on_full = "drop_oldest"', "",
             "[collector]", f"url = {_toml_str(collector_url)}", f"api_key = {_toml_str(api_key)}",
             "batch_size = 20_000", "interval_s = 1.0", ""]
    for device in devices:
        lines += ["[[devices]]", f"name = {_toml_str(device['name'])}", f"profile = {_toml_str(device['profile'])}",
                  "[devices.connection]"]
        for key, value in device["connection"].items():
            rendered = _toml_str(value) if isinstance(value, str) else repr(value).lower() \
                if isinstance(value, bool) else repr(value)
            lines.append(f"{key} = {rendered}")
        lines.append("")
    return "\n".join(lines)


def agent_modbus_devices(plant: ModbusPlant, poll_ms: int, profile: str = "bench_plc") -> list[dict[str, Any]]:
    return [{"name": plant.device_name(unit), "profile": profile,
             "connection": {"host": plant.host, "port": plant.port, "unit_id": unit,
                            "poll_interval_s": poll_ms / 1000.0}}
            for unit in range(1, plant.devices + 1)]


def agent_mqtt_devices(load: MqttLoad, profile: str = "bench_sensor") -> list[dict[str, Any]]:
    return [{"name": "sensors", "profile": profile,
             "connection": {"broker": f"mqtt://{load.host}:{load.port}", "qos": 1}}]


# -- counting --------------------------------------------------------------------------------


def telemetry_points(payload: bytes | bytearray) -> list[tuple[str, dict[str, Any]]]:
    """(device, values) of each entry of a ``v1/gateway/telemetry`` message.

    The message is ``{"device": [{"ts": ms, "values": {...}}, ...]}``; an entry may also be a plain
    ``{key: value}`` without a timestamp, and a device may map to a single entry instead of a list.
    """
    doc = json.loads(payload)
    if not isinstance(doc, dict):
        raise ValueError(f"telemetry must be a JSON object, got {type(doc).__name__}")
    out: list[tuple[str, dict[str, Any]]] = []
    for device, entries in doc.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, dict):
                raise ValueError(f"telemetry entry of {device!r} is not an object")
            values = entry.get("values") if "values" in entry else entry
            if not isinstance(values, dict):
                raise ValueError(f"telemetry values of {device!r} are not an object")
            out.append((device, values))
    return out


class UpstreamCounter:
    """Datapoints received on the gateway telemetry topic, and the ``seq`` values among them.

    Thread-safe: the MQTT client's thread calls :meth:`add`, the bench reads :meth:`total`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.datapoints = 0
        self.messages = 0
        self.malformed = 0
        self.seqs: list[int] = []
        self.first_at: float | None = None

    def add(self, payload: bytes | bytearray, now: float | None = None) -> None:
        try:
            points = telemetry_points(payload)
        except ValueError:  # json.JSONDecodeError is a ValueError
            with self._lock:
                self.malformed += 1
            return
        count = sum(len(values) for _, values in points)
        seqs = [int(values["seq"]) for _, values in points if "seq" in values]
        with self._lock:
            self.messages += 1
            self.datapoints += count
            self.seqs.extend(seqs)
            if self.first_at is None and count:
                self.first_at = time.monotonic() if now is None else now

    def total(self) -> int:
        with self._lock:
            return self.datapoints

    def seq_snapshot(self) -> list[int]:
        with self._lock:
            return list(self.seqs)

    def reset(self) -> None:
        with self._lock:
            self.datapoints = self.messages = self.malformed = 0
            self.seqs = []
            self.first_at = None


@dataclass(frozen=True)
class Delivery:
    """What came out upstream of the messages a load generator published."""

    expected: int  # messages from the first delivered seq to the last published one
    unique: int
    duplicates: int  # deliveries beyond the first of a seq
    lost: int

    @property
    def loss_ratio(self) -> float:
        return self.lost / self.expected if self.expected else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "unique": self.unique, "duplicates": self.duplicates,
                "lost": self.lost, "loss_ratio": round(self.loss_ratio, 6)}


def delivery(seqs: Iterable[int], published: Sequence[int] | int) -> Delivery:
    """Count ``seqs`` (delivered, possibly repeated) against what the publishers had published.

    With ``P = len(published)`` publishers (lanes), lane ``k`` publishes seqs ``k, k+P, k+2P, ...``
    and ``published[k]`` of them were acknowledged by the broker; an int is one lane. Messages
    published before the gateway was subscribed cannot reach it, so in each lane the expected
    range starts at the first seq delivered; seqs never published are ignored.
    """
    lanes = [published] if isinstance(published, int) else list(published)
    width = len(lanes)
    counts = Counter(s for s in seqs if s >= 0 and s // width < lanes[s % width])
    expected = unique = duplicates = 0
    for lane, count in enumerate(lanes):
        got = {s // width: n for s, n in counts.items() if s % width == lane}
        first = min(got) if got else count
        expected += count - first if got else count
        unique += len(got)
        duplicates += sum(got.values()) - len(got)
    return Delivery(expected=expected, unique=unique, duplicates=duplicates, lost=expected - unique)


def missing_ranges(seqs: Iterable[int], published: Sequence[int] | int, limit: int = 5) -> list[tuple[int, int, int]]:
    """The largest runs of expected but undelivered seqs as (first, last, count), biggest first.

    Seqs of different publishers interleave, so a run continues while the next missing seq is at
    most one round of publishers (``len(published)``) further.
    """
    lanes = [published] if isinstance(published, int) else list(published)
    width = len(lanes)
    got = {s for s in seqs if s >= 0 and s // width < lanes[s % width]}
    missing: list[int] = []
    for lane, count in enumerate(lanes):
        indices = sorted(s // width for s in got if s % width == lane)
        if indices:
            have = set(indices)
            missing += [lane + i * width for i in range(indices[0], count) if i not in have]
    runs: list[tuple[int, int, int]] = []
    for seq in sorted(missing):
        if runs and seq - runs[-1][1] <= width:
            first, _, n = runs[-1]
            runs[-1] = (first, seq, n + 1)
        else:
            runs.append((seq, seq, 1))
    return sorted(runs, key=lambda r: -r[2])[:limit]


def rate(samples: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Average rate of a cumulative counter between ``start`` and ``end`` from ``(time, value)`` samples:
    the first sample at or after ``start`` and the last at or before ``end``."""
    window = [(t, v) for t, v in samples if start <= t <= end]
    if len(window) < 2 or window[-1][0] <= window[0][0]:
        raise ValueError("need two samples inside the window")
    (t0, v0), (t1, v1) = window[0], window[-1]
    return (v1 - v0) / (t1 - t0)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def render_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of result rows (dicts with the same keys, values already formatted or numbers)."""
    if not rows:
        return ""
    keys = list(rows[0])
    cells = [[_cell(row.get(k)) for k in keys] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    out = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cell, widths, strict=True)))
            for cell in cells]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
