"""A simulated MES: part-flow events posted to the collector, as a manufacturing execution system would.

Every part a CNC machine completes becomes ``part_loaded`` (one cycle before),
``part_machined``, ``part_inspected`` at the quality station ``qs-1`` and, when
it passed, ``part_packed`` at ``pack-1`` (``docs/events.md``). The flow has the
faults real MES data has, each with a seeded probability (:class:`MesOptions`):
parts the machine scrapped fail inspection, a few good ones fail or go to rework,
some are packed with no inspection record, some wait unpacked, some events are
posted twice (the collector stores them once) and some arrive late, after
newer ones (the analytics go by event time).

Where the parts come from:

* **history**: :func:`plant_history` runs the simulated plant model
  (:class:`simulators.plant.Plant`, the same model the plant servers run) over
  the hours before now and takes each machine's part completion times;
* **live**: :class:`CounterFollower` reads the agent's status API
  (``GET /api/v1/devices``: each machine's good and scrap parts of the shift)
  and turns every increase into completed parts.

:class:`PartFlow` and :class:`Outbox` are pure and deterministic for a seed;
:func:`run_mes` does the I/O (``POST /api/v1/events/batch`` with the MES's key,
retried with a bounded backoff; a full outbox drops the oldest events and counts
them).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "DEFECTS",
    "CounterFollower",
    "MesOptions",
    "MesStats",
    "Outbox",
    "PartFlow",
    "plant_history",
    "post_events",
    "run_mes",
]

log = logging.getLogger("simulators.mes")

DEFECTS = ("bore oversize", "surface scratch", "burr", "thread damaged", "position out of tolerance")
BATCH = 1000
"""Events per ``POST /api/v1/events/batch`` (the collector's limit)."""


@dataclass(frozen=True)
class MesOptions:
    """Delays in seconds (uniform ranges) and the probabilities of each irregularity."""

    inspect_delay_s: tuple[float, float] = (20.0, 240.0)
    pack_delay_s: tuple[float, float] = (60.0, 900.0)
    order_size: tuple[int, int] = (60, 160)
    skip_inspection_p: float = 0.03
    rework_p: float = 0.01
    false_nok_p: float = 0.01
    not_packed_p: float = 0.02
    not_machined_p: float = 0.01
    duplicate_p: float = 0.01
    late_p: float = 0.02
    late_by_s: tuple[float, float] = (30.0, 300.0)


@dataclass
class _Line:
    order: int = 0
    left: int = 0


class PartFlow:
    """Turns parts completed on a machine into the MES's events (envelopes of ``docs/events.md``).

    Part ids are the machine and the completion time in milliseconds, so the same
    part always gets the same ids (a replayed history is stored once).
    """

    def __init__(self, seed: int, gateway: str = "mes", options: MesOptions | None = None,
                 inspector: str = "qs-1", packer: str = "pack-1") -> None:
        self.rng = random.Random(seed)
        self.gateway = gateway
        self.options = options or MesOptions()
        self.inspector = inspector
        self.packer = packer
        self._lines: dict[str, _Line] = {}

    def _order(self, device: str) -> str:
        line = self._lines.setdefault(device, _Line())
        if line.left <= 0:
            line.order += 1
            line.left = self.rng.randint(*self.options.order_size)
        line.left -= 1
        return f"O-{device}-{line.order:04d}"

    def _event(self, part: str, step: str, ts: float, device: str, kind: str, **attributes: Any) -> dict[str, Any]:
        return {"id": f"{part}.{step}", "ts": round(ts, 3), "gateway": self.gateway, "device": device,
                "kind": kind, "attributes": attributes}

    def part(self, device: str, completed: float, cycle_s: float, scrap: bool) -> list[dict[str, Any]]:
        """The events of one part that ``device`` completed at ``completed`` after a ``cycle_s`` cycle."""
        o, rng = self.options, self.rng
        part = f"P-{device}-{round(completed * 1000)}"
        order = self._order(device)
        common = {"part_id": part, "order_id": order}
        loaded = completed - cycle_s
        out = [self._event(part, "loaded", loaded, device, "part_loaded", station=device, **common)]
        if rng.random() < o.not_machined_p:  # taken off the fixture: never machined
            return out
        out.append(self._event(part, "machined", completed, device, "part_machined", station=device,
                               cycle_time_s=round(cycle_s, 2), **common))
        inspected = completed + rng.uniform(*o.inspect_delay_s)
        if rng.random() < o.skip_inspection_p:  # no inspection record: packed straight away
            out.append(self._event(part, "packed", inspected, self.packer, "part_packed", station=self.packer,
                                   **common))
            return out
        draw = rng.random()
        if scrap or draw < o.false_nok_p:
            result, extra = "nok", {"defect": rng.choice(DEFECTS)}
        elif draw < o.false_nok_p + o.rework_p:
            result, extra = "rework", {"defect": rng.choice(DEFECTS)}
        else:
            result, extra = "ok", {}
        out.append(self._event(part, "inspected", inspected, self.inspector, "part_inspected",
                               station=self.inspector, result=result, **extra, **common))
        if result == "ok" and rng.random() >= o.not_packed_p:
            packed = inspected + rng.uniform(*o.pack_delay_s)
            out.append(self._event(part, "packed", packed, self.packer, "part_packed", station=self.packer,
                                   package_id=f"PK-{order}-{int(packed // 600)}", **common))
        return out


@dataclass
class Outbox:
    """Events waiting for their time, released in time order, some late and some twice (seeded).

    At most ``max_events`` wait; beyond that the oldest are dropped and counted in ``dropped``.
    """

    seed: int
    options: MesOptions = field(default_factory=MesOptions)
    max_events: int = 200_000
    dropped: int = 0
    _heap: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    _n: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        o = self.options
        for e in events:
            due = e["ts"]
            if self._rng.random() < o.late_p:
                due += self._rng.uniform(*o.late_by_s)
            self._push(due, e)
            if self._rng.random() < o.duplicate_p:
                self._push(due + self._rng.uniform(1.0, 60.0), e)
        while len(self._heap) > self.max_events:
            oldest = min(range(len(self._heap)), key=lambda i: self._heap[i][:2])
            self._heap[oldest] = self._heap[-1]
            self._heap.pop()
            heapq.heapify(self._heap)
            self.dropped += 1

    def _push(self, due: float, event: dict[str, Any]) -> None:
        self._n += 1
        heapq.heappush(self._heap, (due, self._n, event))

    def due(self, now: float, limit: int = BATCH) -> list[dict[str, Any]]:
        """Up to ``limit`` events due at ``now``, in the order they are due."""
        out: list[dict[str, Any]] = []
        while self._heap and self._heap[0][0] <= now and len(out) < limit:
            out.append(heapq.heappop(self._heap)[2])
        return out


def plant_history(seed: int, cnc: int, start: float, end: float) -> list[tuple[str, float, float, bool]]:
    """Parts the simulated plant (``seed``, ``cnc`` machines) completed over ``[start, end)``, mapped onto
    wall-clock time: ``(machine, completed_at, cycle_s, scrap)`` in time order."""
    from simulators.plant import Plant

    plant = Plant(seed=seed, cnc=cnc, lines=0, sensors=0)
    span = max(0.0, end - start)
    step = 60.0
    while plant.t < span:
        plant.step(min(step, span - plant.t))
    parts = []
    for machine in plant.cnc:
        ideal = machine.ideal_cycle_s
        done = sorted([(t, False) for t in machine.good_times] + [(t, True) for t in machine.scrap_times])
        previous = None
        for t, scrap in done:
            gap = t - previous if previous is not None else ideal
            cycle = gap if ideal <= gap <= 1.5 * ideal else ideal * 1.15  # a stop between two parts
            parts.append((machine.name, start + t, cycle, scrap))
            previous = t
    parts.sort(key=lambda p: p[1])
    return parts


class CounterFollower:
    """Parts completed since the last reading, from each machine's good and scrap counts of the shift.

    ``update(device, good, scrap, now)`` gives ``(completed_at, cycle_s, scrap)`` for every part made since the
    previous reading, spread evenly over the time between the readings; a count that went down (a new shift)
    starts again from it.
    """

    def __init__(self, ideal_cycle_s: float = 12.0) -> None:
        self.ideal = ideal_cycle_s
        self._last: dict[str, tuple[int, int, float]] = {}

    def update(self, device: str, good: int, scrap: int, now: float) -> list[tuple[float, float, bool]]:
        last = self._last.get(device)
        self._last[device] = (good, scrap, now)
        if last is None or good < last[0] or scrap < last[1]:
            return []
        new = [False] * (good - last[0]) + [True] * (scrap - last[1])
        if not new:
            return []
        span = max(now - last[2], 1e-3)
        cycle = max(self.ideal, span / len(new)) if len(new) > 1 else max(self.ideal, min(span, 1.5 * self.ideal))
        return [(last[2] + span * (i + 1) / len(new), min(cycle, 1.5 * self.ideal), s) for i, s in enumerate(new)]


@dataclass
class MesStats:
    parts: int = 0
    posted: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_posts: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


async def post_events(client: httpx.AsyncClient, url: str, key: str, events: list[dict[str, Any]],
                      stats: MesStats, attempts: int = 5) -> bool:
    """Post ``events`` in batches; retry a failed batch with a growing pause; ``False`` when one was given up."""
    for first in range(0, len(events), BATCH):
        chunk = events[first:first + BATCH]
        for attempt in range(attempts):
            try:
                answer = await client.post(f"{url}/api/v1/events/batch", json={"events": chunk},
                                           headers={"x-api-key": key})
            except httpx.HTTPError as exc:
                log.debug("posting events failed: %s", exc)
                answer = None
            if answer is not None and answer.status_code == 200:
                body = answer.json()
                stats.posted += len(chunk)
                stats.accepted += int(body["accepted"])
                stats.duplicates += int(body["duplicates"])
                stats.rejected += len(body["rejected"])
                for r in body["rejected"][:3]:
                    log.warning("collector rejected MES event %s: %s", r.get("id"), r.get("errors"))
                break
            if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                log.warning("collector refused MES events: %s %s", answer.status_code, answer.text[:200])
                stats.failed_posts += 1
                return False
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        else:
            stats.failed_posts += 1
            return False
    return True


def _machines(devices: Iterable[Mapping[str, Any]], profile: str) -> dict[str, tuple[int, int]]:
    out = {}
    for d in devices:
        meta, parts = d.get("meta") or {}, (d.get("derived") or {}).get("parts") or {}
        if meta.get("profile") == profile and isinstance(parts.get("good"), int):
            out[str(d["name"])] = (int(parts["good"]), int(parts.get("scrap") or 0))
    return out


async def run_mes(collector_url: str, api_key: str, stop: asyncio.Event, *, agent_url: str | None = None,
                  seed: int = 7, plant_seed: int = 42, cnc: int = 2, history_s: float = 0.0,
                  gateway: str = "mes", poll_s: float = 2.0, profile: str = "cnc_vmc",
                  options: MesOptions | None = None, clock: Any = None) -> MesStats:
    """Post the plant's part history, then follow the agent's part counters until ``stop`` is set."""
    import time

    now = clock or time.time
    flow = PartFlow(seed, gateway, options)
    outbox = Outbox(seed + 1, flow.options)
    follower = CounterFollower()
    stats = MesStats()
    async with httpx.AsyncClient(timeout=10.0) as client:
        if history_s > 0:
            started = now()
            def past() -> int:
                parts = plant_history(plant_seed, cnc, started - history_s, started)
                for device, completed, cycle, scrap in parts:
                    outbox.add(flow.part(device, completed, cycle, scrap))
                return len(parts)

            parts = await asyncio.to_thread(past)  # before the live loop: nothing else touches flow or outbox yet
            stats.parts += parts
            log.info("MES: %d parts of the last %.0f h to post", parts, history_s / 3600)
        while not stop.is_set():
            if agent_url is not None:
                try:
                    answer = await client.get(f"{agent_url}/api/v1/devices")
                    answer.raise_for_status()
                    for device, (good, scrap) in _machines(answer.json().get("devices", []), profile).items():
                        for completed, cycle, scrapped in follower.update(device, good, scrap, now()):
                            outbox.add(flow.part(device, completed, cycle, scrapped))
                            stats.parts += 1
                except (httpx.HTTPError, ValueError) as exc:
                    log.debug("MES: reading the agent failed: %s", exc)
            while batch := outbox.due(now()):
                await post_events(client, collector_url, api_key, batch, stats)
                if stop.is_set():
                    break
            stats.dropped = outbox.dropped
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
        # on the way out: what is already due (the future steps of parts in progress stay unposted)
        batch = outbox.due(now(), limit=10 * BATCH)
        if batch:
            await post_events(client, collector_url, api_key, batch, stats, attempts=2)
    return stats
