"""A degrading turbofan engine publishing one message per flight cycle over MQTT (profile ``turbofan_engine``).

Two sources of readings, both with the 14 sensor channels the shipped RUL model reads (``s2`` ... ``s21``
of NASA C-MAPSS FD001):

* :class:`ReplayEngine` replays one unit of a C-MAPSS file (``test_FD001.txt`` from the public data set,
  given by path; the demo does not need it);
* :class:`SyntheticEngine` (the default) draws a run to failure: each channel starts near FD001's healthy
  operating point and drifts in the direction FD001 engines drift, along ``g(w) = -0.713 + 0.0632 e^(4w)``
  standard deviations of the channel, ``w`` the fraction of life used (the shape of FD001's mean trend: -0.65
  at the start, about -0.2 at half life, +1.6 at 90 %), plus per-unit offsets and measurement noise.

:class:`TurbofanPublisher` sends each cycle as JSON to ``plant/engines/<name>/cycle``::

    {"ts": "2026-11-22T08:00:00.000Z", "cycle": 17, "s2": 642.3, ..., "s21": 23.41}

Run it alone with ``python -m simulators.turbofan --mqtt-url mqtt://127.0.0.1:1883 --name engine-1``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import paho.mqtt.client as mqtt

from simulators.bearing import iso_utc
from simulators.broker import parse_mqtt_url

__all__ = [
    "CHANNELS",
    "TOPIC",
    "Engine",
    "ReplayEngine",
    "SyntheticEngine",
    "TurbofanPublisher",
    "main",
    "message",
]

log = logging.getLogger("simulators.mqtt")  # the MQTT side of the simulated plant

TOPIC = "plant/engines/{device}/cycle"
CHANNELS: tuple[str, ...] = ("s2", "s3", "s4", "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s17", "s20",
                             "s21")
"""The channels published (the inputs of the shipped FD001 model)."""
# FD001's healthy operating point and spread of each channel (the model card's normalisation constants).
_CENTRE = (642.68093355, 1590.52311861, 1408.93378169, 553.36771121, 2388.09665164, 9065.24294072, 47.54116815,
           521.41347002, 2388.09615239, 8143.75272212, 8.44214558, 393.21065387, 38.81627066, 23.28970536)
_SPREAD = (0.50004115, 6.13100093, 9.00038664, 0.88507081, 0.07098376, 22.08234433, 0.26708093, 0.73753552,
           0.07191717, 19.07571365, 0.03750413, 1.54872549, 0.18074205, 0.10824825)
_FALLING = frozenset({"s7", "s12", "s20", "s21"})  # channels that fall as the engine wears
_WEAK = {"s9": 0.65, "s14": 0.5}  # core speeds drift less, and less regularly
_NOISE = {"s9": 0.3, "s14": 0.3}  # measurement noise in spreads (0.5 for the others)


class Engine(Protocol):
    name: str

    @property
    def cycles(self) -> int: ...

    def reading(self, cycle: int) -> dict[str, float]:
        """The channels at ``cycle`` (1-based)."""
        ...


def wear_trend(w: float) -> float:
    """Mean drift of a channel, in spreads, at life fraction ``w`` (see the module docstring)."""
    return -0.713 + 0.0632 * math.exp(4.0 * w)


class SyntheticEngine:
    """A run to failure of ``life`` cycles (fails after the last one); deterministic for a seed."""

    def __init__(self, name: str, seed: int = 1, life: int = 200) -> None:
        if life < 2:
            raise ValueError("life must be at least 2 cycles")
        self.name = name
        self.life = life
        rng = np.random.default_rng([seed, life])
        self._unit = rng.normal(0.0, 0.15, len(CHANNELS))
        self._noise = rng.normal(0.0, 1.0, (life, len(CHANNELS)))

    @property
    def cycles(self) -> int:
        return self.life

    def true_rul(self, cycle: int) -> int:
        """Cycles left after ``cycle``."""
        return self.life - cycle

    def reading(self, cycle: int) -> dict[str, float]:
        if not 1 <= cycle <= self.life:
            raise ValueError(f"cycle {cycle} outside 1..{self.life}")
        g = wear_trend(cycle / self.life)
        out = {}
        for j, name in enumerate(CHANNELS):
            z = (-1.0 if name in _FALLING else 1.0) * _WEAK.get(name, 1.0) * g + self._unit[j]
            z += _NOISE.get(name, 0.5) * self._noise[cycle - 1, j]
            out[name] = round(_CENTRE[j] + _SPREAD[j] * z, 4)
        return out


class ReplayEngine:
    """One unit of a C-MAPSS text file (``unit cycle setting1..3 s1..s21`` rows), replayed cycle by cycle."""

    def __init__(self, path: Path, unit: int, name: str | None = None) -> None:
        data = np.loadtxt(path, ndmin=2)
        rows = data[data[:, 0].astype(int) == unit]
        if len(rows) == 0:
            raise ValueError(f"{path}: no unit {unit}")
        self.name = name or f"engine-{unit}"
        self.unit = unit
        self._rows = rows[np.argsort(rows[:, 1])]
        self._index = {name: 5 + int(name[1:]) - 1 for name in CHANNELS}

    @property
    def cycles(self) -> int:
        return len(self._rows)

    def reading(self, cycle: int) -> dict[str, float]:
        row = self._rows[cycle - 1]
        return {name: float(row[i]) for name, i in self._index.items()}


def message(engine: Engine, cycle: int, now: float) -> dict[str, object]:
    """The JSON message of one cycle."""
    return {"ts": iso_utc(now), "cycle": cycle, **engine.reading(cycle)}


class TurbofanPublisher:
    """Publishes each engine's cycles, one every ``cycle_s`` seconds, with QoS 1; use ``async with``."""

    def __init__(self, engines: Sequence[Engine], broker_url: str = "mqtt://127.0.0.1:1883",
                 cycle_s: float = 1.0, client_id: str | None = None) -> None:
        if cycle_s <= 0:
            raise ValueError("cycle_s must be > 0")
        self.engines = list(engines)
        self.host, self.port = parse_mqtt_url(broker_url)
        self.cycle_s = cycle_s
        self.cycle = 0
        self.published = 0
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                   client_id=client_id or f"edge-sim-turbofan-{uuid.uuid4().hex[:8]}")

    async def __aenter__(self) -> TurbofanPublisher:
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def publish_cycle(self, now: float) -> int:
        """Publish the next cycle of every engine still running; returns how many were sent."""
        self.cycle += 1
        sent = 0
        for engine in self.engines:
            if self.cycle <= engine.cycles:
                payload = json.dumps(message(engine, self.cycle, now))
                info = self._client.publish(TOPIC.format(device=engine.name), payload, qos=1)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    sent += 1
        self.published += sent
        return sent

    @property
    def done(self) -> bool:
        return all(self.cycle >= e.cycles for e in self.engines)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Publish every ``cycle_s`` seconds until every engine has run out of cycles or ``stop`` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set() and not self.done:
            self.publish_cycle(time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cycle_s)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.turbofan", description=__doc__.split("\n")[0])
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--name", default="engine-1", help="device name in the topic")
    parser.add_argument("--cycle-s", type=float, default=1.0, help="seconds between cycles")
    parser.add_argument("--life", type=int, default=200, help="cycles to failure of the synthetic engine")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cmapss", type=Path, help="replay a unit of this C-MAPSS file instead")
    parser.add_argument("--unit", type=int, default=1, help="the unit to replay")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    engine: Engine
    if args.cmapss is not None:
        engine = ReplayEngine(args.cmapss, args.unit, args.name)
    else:
        engine = SyntheticEngine(args.name, args.seed, args.life)

    async def go() -> None:
        async with TurbofanPublisher([engine], args.mqtt_url, args.cycle_s) as publisher:
            log.info("publishing %d cycles of %s to %s", engine.cycles, engine.name, TOPIC.format(device=engine.name))
            await publisher.run()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
