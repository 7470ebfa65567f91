"""Sparkplug B edge node state: births, sequence numbers, aliases and payloads, without I/O.

The agent can publish its devices' tags (and computed figures such as OEE and health) to a
plant broker as a Sparkplug B edge node (specification 3.0). :class:`EdgeNode` builds every
payload; :mod:`.publisher` does the MQTT side. Rules kept here:

* **bdSeq**: the NDEATH registered as the MQTT will of a connection carries a ``bdSeq``
  metric, and the NBIRTH sent on that connection carries the same value; it counts
  connections (0..255, wrapping).
* **seq**: NBIRTH has ``seq`` 0; every later message of the node (DBIRTH, NDATA, DDATA,
  DDEATH) carries the next value, 0..255 wrapping. NDEATH has none.
* **Births carry every metric**: NBIRTH has ``bdSeq``, ``Node Control/Rebirth`` and the
  node's metrics; each DBIRTH has every metric the device has reported, each with its
  name, a stable alias, its datatype and its latest value. Data messages then carry the
  alias only. A metric a device reports for the first time after its birth makes a new
  DBIRTH for that device (a host must learn its datatype before it gets data).
* **Historical data**: samples that waited while the broker was unreachable are sent after
  the births, flagged ``is_historical``, with their own timestamps.
* **Rebirth**: an NCMD with ``Node Control/Rebirth = true`` makes the node send NBIRTH (seq 0)
  and every DBIRTH again, on the same connection and bdSeq.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from edge_agent.connectors.sparkplug.schema import DataType, Metric, Payload
from edge_agent.model import Quality, Sample, Value

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
BDSEQ = "bdSeq"
MODULO = 256


def datatype_of(value: Value) -> DataType:
    if isinstance(value, bool):
        return DataType.Boolean
    if isinstance(value, int):
        return DataType.Int64
    if isinstance(value, float):
        return DataType.Double
    return DataType.String


def _set_value(metric: Any, datatype: int, value: Value) -> None:
    if datatype == DataType.Boolean:
        metric.boolean_value = bool(value)
    elif datatype == DataType.Int64:
        metric.long_value = int(value) & 0xFFFF_FFFF_FFFF_FFFF  # two's complement on the wire
    elif datatype == DataType.Double:
        metric.double_value = float(value)
    else:
        metric.string_value = str(value)


def _fits(datatype: int, value: Value) -> bool:
    """Whether ``value`` can travel as the metric's birth datatype (ints widen to Double)."""
    if datatype == DataType.Double:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return datatype_of(value) == datatype


@dataclass
class MetricState:
    name: str
    alias: int
    datatype: int
    value: Value
    ts: float


@dataclass
class DeviceState:
    name: str
    metrics: dict[str, MetricState] = field(default_factory=dict)
    born: bool = False  # DBIRTH sent on this session with every metric in ``metrics``


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 0


class EdgeNode:
    """Payloads and topics of one Sparkplug B edge node (see the module docstring)."""

    def __init__(self, group_id: str, edge_node_id: str, bdseq: int = 0) -> None:
        self.group_id = group_id
        self.edge_node_id = edge_node_id
        self.bdseq = bdseq % MODULO  # of the next connection (its will)
        self.session_bdseq = self.bdseq  # of the current connection (its NBIRTH)
        self.seq = 0
        self.born = False
        self.devices: dict[str, DeviceState] = {}
        self.node_metrics: dict[str, MetricState] = {}
        self._next_alias = 1  # 0 is left unused: some hosts treat it as "no alias"

    # -- topics -----------------------------------------------------------------------------

    def topic(self, kind: str, device: str | None = None) -> str:
        base = f"{NAMESPACE}/{self.group_id}/{kind}/{self.edge_node_id}"
        return base if device is None else f"{base}/{device}"

    # -- connection life ----------------------------------------------------------------------

    def will(self) -> Message:
        """The NDEATH to register as the MQTT will of the next connection (QoS 1, per the spec)."""
        return self._death(self.bdseq)

    def death(self) -> Message:
        """The NDEATH of the current connection, published by the node itself before a clean disconnect."""
        return self._death(self.session_bdseq)

    def _death(self, bdseq: int) -> Message:
        payload = Payload()
        _metric(payload, BDSEQ, None, DataType.Int64, bdseq, None)
        return Message(self.topic("NDEATH"), payload.SerializeToString(), qos=1)

    def connected(self) -> None:
        """A new MQTT connection (made with :meth:`will`): nothing is born on it yet; the will of the
        next connection carries the next bdSeq."""
        self.session_bdseq = self.bdseq
        self.bdseq = (self.bdseq + 1) % MODULO
        self.born = False
        for device in self.devices.values():
            device.born = False

    def births(self, now: float) -> list[Message]:
        """NBIRTH (seq 0, this session's bdSeq) and a DBIRTH per device."""
        self.seq = 0
        payload = Payload(timestamp=_ms(now), seq=0)
        _metric(payload, BDSEQ, None, DataType.Int64, self.session_bdseq, None)
        _metric(payload, REBIRTH, None, DataType.Boolean, False, None)
        for m in self.node_metrics.values():
            _metric(payload, m.name, m.alias, m.datatype, m.value, m.ts)
        out = [Message(self.topic("NBIRTH"), payload.SerializeToString())]
        self.born = True
        for device in self.devices.values():
            out.append(self._dbirth(device, now))
        return out

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) % MODULO
        return self.seq

    def _dbirth(self, device: DeviceState, now: float) -> Message:
        payload = Payload(timestamp=_ms(now), seq=self._next_seq())
        for m in device.metrics.values():
            _metric(payload, m.name, m.alias, m.datatype, m.value, m.ts)
        device.born = True
        return Message(self.topic("DBIRTH", device.name), payload.SerializeToString())

    # -- data ---------------------------------------------------------------------------------

    def _remember(self, device: DeviceState, name: str, value: Value, ts: float) -> None:
        """Track a metric's latest value; a new metric (or one whose type changed) needs a new birth."""
        state = device.metrics.get(name)
        if state is None or not _fits(state.datatype, value):
            alias = state.alias if state is not None else self._alias()
            device.metrics[name] = MetricState(name, alias, datatype_of(value), value, ts)
            device.born = False
        elif ts >= state.ts:
            state.value, state.ts = value, ts

    def _alias(self) -> int:
        alias = self._next_alias
        self._next_alias += 1
        return alias

    def data(self, samples: Iterable[Sample], now: float, *, historical: bool = False,
             computed: Mapping[str, Mapping[str, Value]] | None = None) -> list[Message]:
        """DDATA per device for ``samples`` (and ``computed`` metrics per device), after any DBIRTH
        they need; nothing before the node's own birth (the births will carry the latest values).

        A value whose type differs from its metric's birth datatype re-births the metric with the new
        type; values of the old type in the same call are not sent."""
        by_device: dict[str, list[tuple[str, Value, float, bool]]] = {}
        for s in samples:
            by_device.setdefault(s.device, []).append((s.tag, s.value, s.ts, s.quality == Quality.BAD))
        for device_name, figures in (computed or {}).items():
            by_device.setdefault(device_name, []).extend((k, v, now, False) for k, v in figures.items())
        out: list[Message] = []
        for device_name, values in by_device.items():
            device = self.devices.setdefault(device_name, DeviceState(device_name))
            for name, value, ts, _null in values:
                self._remember(device, name, value, ts)
            if not self.born:
                continue
            if not device.born:  # a host learns each metric's alias and datatype before its data
                out.append(self._dbirth(device, now))
            sendable = [(device.metrics[n], v, t, null) for n, v, t, null in values
                        if _fits(device.metrics[n].datatype, v)]
            if not sendable:
                continue
            payload = Payload(timestamp=_ms(now), seq=self._next_seq())
            for state, value, ts, null in sendable:
                m = _metric(payload, None, state.alias, state.datatype, None if null else value, ts)
                if historical:
                    m.is_historical = True
            out.append(Message(self.topic("DDATA", device_name), payload.SerializeToString()))
        return out

    def device_death(self, device_name: str, now: float) -> Message | None:
        device = self.devices.get(device_name)
        if device is None or not self.born:
            return None
        device.born = False
        payload = Payload(timestamp=_ms(now), seq=self._next_seq())
        return Message(self.topic("DDEATH", device_name), payload.SerializeToString())

    def forget(self, device_name: str) -> None:
        self.devices.pop(device_name, None)

    # -- commands -----------------------------------------------------------------------------

    def wants_rebirth(self, payload: bytes) -> bool:
        """Whether an NCMD payload asks for a rebirth (``Node Control/Rebirth`` = true)."""
        try:
            message = Payload.FromString(payload)
        except DecodeError:
            return False
        return any(m.name == REBIRTH and m.WhichOneof("value") == "boolean_value" and m.boolean_value
                   for m in message.metrics)


def _ms(ts: float) -> int:
    return round(ts * 1000)


def _metric(payload: Any, name: str | None, alias: int | None, datatype: int, value: Value | None,
            ts: float | None) -> Any:
    """Add a metric; ``value`` None makes it ``is_null`` (a BAD sample: the device gave no valid value)."""
    m: Any = payload.metrics.add()
    if name is not None:
        m.name = name
    if alias is not None:
        m.alias = alias
    m.datatype = int(datatype)
    if ts is not None:
        m.timestamp = _ms(ts)
    if value is None:
        m.is_null = True
    else:
        _set_value(m, datatype, value)
    return m


__all__ = ["BDSEQ", "REBIRTH", "EdgeNode", "Message", "Metric", "datatype_of"]
