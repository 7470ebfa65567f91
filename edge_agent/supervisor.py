"""The agent: one supervisor that owns the buffer, the connectors, sync and the local HTTP server.

Structured concurrency: every long-running piece is a task of one TaskGroup.
Shutdown order keeps accepted data: connectors stop first, then the writer finishes
the batch in hand and the write queue is flushed to SQLite, then sync and the HTTP
server stop, then the buffer closes.

The buffer's troubles are reported, never fatal: a damaged file found at start is
moved aside (``buffer_corrupt`` event), drops at the cap become rate-limited
``buffer_overflow`` events, a full or read-only disk is a ``buffer_write_failed``
event and a status flag while the page and the latest values keep being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from cloud_sync.uploader import Refused, Rows, Uploader, make_client
from edge_agent.behaviour.machine import MachineOptions
from edge_agent.behaviour.recorder import BehaviourRecorder, RecorderOptions
from edge_agent.buffer.ledger import QuarantineRecord
from edge_agent.buffer.overflow import OverflowReporter
from edge_agent.buffer.store import AppendResult, Buffer, BufferStats
from edge_agent.buffer.writer import Item, WriteQueue, Writer
from edge_agent.config import AgentConfig, Device, load_config
from edge_agent.connectors import connector_class
from edge_agent.connectors.base import Backoff, CommitCallback, DeviceStatus, describe_error
from edge_agent.errors import ConfigError, StoreError
from edge_agent.model import Event, Mark, Sample, Value
from edge_agent.oee import LiveOee, OeeResult, options_for_profile
from edge_agent.oee.events import MachineEvents
from edge_agent.oee.rollups import OeeRollups, Place
from edge_agent.ops.memory import MMAP_THRESHOLD, TRIM_THRESHOLD, tune_allocator, usage
from edge_agent.ops.notify import Notifier, feed_watchdog, watchdog_interval
from edge_agent.profiles import Profile
from edge_agent.status.history import SqliteHistory
from edge_agent.status.live import LiveView
from edge_agent.status.providers import HealthTrackersProvider, LiveOeeProvider
from edge_agent.status.settings import settings_from

if TYPE_CHECKING:  # imported where used: numpy (maintenance), paho and protobuf (edge node) cost RSS
    from edge_agent.edge_node.publisher import EdgeNodePublisher
    from edge_agent.maintenance.monitor import AnomalyMonitor
    from edge_agent.maintenance.tracker import HealthTracker

log = logging.getLogger("edge_agent")
GATEWAY = "_gateway"
PRUNE_INTERVAL_S = 30.0
OVERFLOW_FLUSH_S = 5.0
SYNC_GUARD_S = 30.0  # how often the sync chain is checked (and restarted if a round was ever lost)


class DeviceSink:
    """The sink one connector writes into; keeps the device's status and latest values."""

    def __init__(self, agent: Agent, device: Device) -> None:
        self.agent = agent
        self.device = device
        self.status = DeviceStatus(device.name, device.protocol)

    async def emit(
        self, samples: Sequence[Sample], on_commit: CommitCallback | None = None, marks: Sequence[Mark] = ()
    ) -> None:
        if not samples:
            return
        self.status.samples += len(samples)
        self.status.last_sample_ts = samples[-1].ts
        latest = self.agent.latest.setdefault(self.device.name, {})
        for s in samples:
            latest[s.tag] = s
        engine = self.agent.oee_engines.get(self.device.name)
        if engine is not None:
            used = engine.tags
            for s in samples:
                if s.tag in used:
                    engine.feed(s)
        self.agent.on_machine_samples(self.device.name, samples)
        self.agent.live.on_samples(samples)
        monitor = self.agent.monitors.get(self.device.name)
        if monitor is not None:
            watched = monitor.tags
            for s in samples:
                if s.tag in watched:
                    change = monitor.feed(s)
                    if change is not None:
                        detail = f"anomaly score {change.score:.2f}"
                        self.agent.live.on_anomaly(change.device, change.tag, change.active, change.score, detail)
        tracker = self.agent.health_trackers.get(self.device.name)
        if tracker is not None:
            for event in tracker.feed(samples):
                self.agent.record_event(event)
        if self.agent.edge_node is not None:
            self.agent.edge_node.offer(samples)
        await self.agent.queue.put(Item(samples, (), on_commit, marks))

    async def delivered(self, source: str) -> dict[int, str]:
        writer, buffer = self.agent.writer, self.agent.buffer
        assert writer is not None and buffer is not None
        return await writer.call(buffer.delivery_marks, source)

    def event(self, event: Event) -> None:
        self.agent.record_event(event)

    def connected(self) -> None:
        st = self.status
        if st.state == "connected":
            return
        if st.state == "disconnected":
            st.reconnects += 1
            log.info("%s: device back (%s)", self.device.name, self.device.protocol)
        else:
            log.info("%s: connected (%s)", self.device.name, self.device.protocol)
        previous = st.state
        st.state, st.since, st.last_error = "connected", time.time(), None
        self.event(Event(self.device.name, "device_connected", {"previous": previous}))

    def disconnected(self, error: BaseException | str) -> None:
        st = self.status
        message = describe_error(error)
        st.errors += 1
        if st.state != "disconnected":
            log.error("%s: device unreachable: %s", self.device.name, message)
            st.state, st.since = "disconnected", time.time()
            self.event(Event(self.device.name, "device_disconnected", {"error": message}))
        else:
            log.debug("%s: still unreachable: %s", self.device.name, message)
        st.last_error = message


class _BufferSource:
    """The uploader's view of the buffer, run on the buffer thread."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    async def read(self, stream: str, limit: int, *, newest: bool = False) -> Rows:
        buffer = self.writer.buffer
        return await self.writer.call(buffer.read_newest if newest else buffer.read_unsynced, stream, limit)

    async def ack(self, stream: str, first_seq: int, last_seq: int) -> None:
        await self.writer.call(self.writer.buffer.ack, stream, last_seq, first_seq)

    async def quarantine(self, refused: Refused) -> None:
        record = QuarantineRecord(
            refused.batch_id, refused.stream, refused.first_seq, refused.last_seq, refused.rows,
            refused.status, refused.answer, refused.at, refused.body,
        )
        await self.writer.call(self.writer.buffer.quarantine, record)

    async def backlog(self) -> dict[str, int]:
        return await self.writer.call(self.writer.buffer.backlog)


class Agent:
    def __init__(self, config: AgentConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.started_at = time.time()
        self.clock = clock  # of the behaviour tick: when periods end and sessions time out
        self.machine_events: dict[str, MachineEvents] = {}
        self.recorder: BehaviourRecorder | None = None
        self.rollups: OeeRollups | None = None
        if config.behaviour.enabled:
            started = clock()
            self.recorder = BehaviourRecorder(self._recorder_options(), started)
            if config.behaviour.oee_rollups:
                self.rollups = OeeRollups(config.behaviour.rollups, config.calendar, started)
        self.latest: dict[str, dict[str, Sample]] = {}
        self.sinks: dict[str, DeviceSink] = {}
        self.queue = WriteQueue(config.buffer.queue_size)
        self.buffer: Buffer | None = None
        self.writer: Writer | None = None
        self.uploader: Uploader | None = None
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self._sync_lock = asyncio.Lock()
        self._stats: BufferStats | None = None
        self.dropped: dict[str, int] = {"dropped_oldest": 0, "dropped_newest": 0}
        self.overflow = OverflowReporter(
            config.buffer.on_full, config.buffer.max_rows, config.buffer.max_bytes,
            config.buffer.overflow_event_interval_s, GATEWAY,
        )
        self.oee_engines: dict[str, LiveOee] = {
            d.name: LiveOee(d.name, d.profile.oee, config.calendar, options=options_for_profile(d.profile))
            for d in config.devices if d.profile.oee is not None
        }
        self.monitors: dict[str, AnomalyMonitor] = {}
        self.health_trackers: dict[str, HealthTracker] = {}
        for d in config.devices:
            self._add_maintenance(d)
        self.live = LiveView(
            config.devices, settings_from(config), record=self.record_event, gateway_id=config.gateway_id,
            oee=LiveOeeProvider(self.oee_engines, {
                d.name: d.profile.oee.ideal_cycle_time_s for d in config.devices if d.profile.oee is not None
            }),
            history=SqliteHistory(config.data_dir / "buffer.sqlite"),
            health=HealthTrackersProvider(self.health_trackers),
        )
        self.notifier = Notifier()
        self._tg: asyncio.TaskGroup | None = None
        self._device_tasks: dict[str, asyncio.Task[None]] = {}
        self._reload_requested = asyncio.Event()
        self._writer_task: asyncio.Task[None] | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.edge_node: EdgeNodePublisher | None = None  # [sparkplug_node]: our tags on a plant broker
        self._edge_node_task: asyncio.Task[None] | None = None

    # -- events -----------------------------------------------------------------------------

    def record_event(self, event: Event) -> None:
        self.queue.put_nowait(Item((), (event,), None))  # events are never refused
        self.live.on_event(event)
        if self.recorder is not None:
            for summary in self.recorder.on_event(event):  # sessions it closed
                self.record_event(summary)

    # -- machine events and behaviour rollups (docs/oee.md, docs/events.md) -----------------------

    def _recorder_options(self) -> RecorderOptions:
        cfg = self.config
        calendar = cfg.calendar
        machines = {}
        for d in cfg.devices:
            if d.profile.oee is not None:
                loc = d.location
                machines[d.name] = MachineOptions(
                    micro_stop_s=d.profile.oee.micro_stop_s, ideal_cycle_time_s=d.profile.oee.ideal_cycle_time_s,
                    site=loc.site or None, area=loc.area or None, line=loc.line or None,
                )
        energy = {d.name: tag for d in cfg.devices if d.profile.oee is not None and (tag := energy_tag(d.profile))}
        shifts = "shift" in cfg.behaviour.rollups and not calendar.always
        return RecorderOptions(
            rollups=tuple(r for r in cfg.behaviour.rollups if r != "shift"),
            tz=calendar.tz,
            shifts=calendar.shifts if shifts else None,
            machines=machines,
            energy_tags=energy,
            max_events=cfg.behaviour.max_events,
            delay_s=cfg.behaviour.rollup_delay_s,
        )

    def on_machine_samples(self, device: str, samples: Sequence[Sample]) -> None:
        """A device's samples for its machine events and, for an energy tag, the behaviour profiles."""
        machine = self.machine_events.get(device)
        if machine is not None:
            used = machine.tags
            for s in samples:
                if s.tag in used:
                    for event in machine.feed(s):
                        self.record_event(event)
        recorder = self.recorder
        if recorder is not None:
            tag = recorder.options.energy_tags.get(device)
            if tag is not None:
                for s in samples:
                    if s.tag == tag:
                        recorder.on_sample(s)

    def behaviour_tick(self) -> None:
        """Periodic: stops whose late reason did not come, parts held back, ended periods rolled up."""
        if self.recorder is None:
            return
        now = self.clock()
        for machine in list(self.machine_events.values()):
            for event in machine.advance(now):
                self.record_event(event)
        if self.rollups is not None:
            places = {d.name: Place(d.location.site, d.location.area, d.location.line) for d in self.config.devices}
            engines = {name: engine for name, engine in self.oee_engines.items() if name in self.machine_events}
            for event in self.rollups.tick(now - self.config.behaviour.rollup_delay_s, engines, places):
                self.record_event(event)
        for event in self.recorder.tick(now):
            self.record_event(event)

    async def _behaviour_job(self) -> None:
        """The scheduler's job: a coroutine, so that it runs in the loop with the sinks (a plain function
        would run in a worker thread)."""
        self.behaviour_tick()

    def _flush_behaviour(self) -> None:
        """At shutdown: what the machine events hold back, and the open sessions' summaries."""
        for machine in self.machine_events.values():
            for event in machine.flush():
                self.record_event(event)
        if self.recorder is not None:
            for event in self.recorder.flush(self.clock()):
                self.record_event(event)

    def _on_dropped(self, result: AppendResult) -> None:
        self.dropped["dropped_oldest"] += result.dropped_oldest
        self.dropped["dropped_newest"] += result.dropped_newest
        event = self.overflow.add(result.dropped_oldest, result.dropped_newest, time.time())
        if event is not None:
            self.record_event(event)

    async def _overflow_job(self) -> None:
        """The scheduled flush, as a coroutine: apscheduler runs plain functions in a worker thread, and
        recording an event must happen in the event loop."""
        self._flush_overflow()

    def _flush_overflow(self, force: bool = False) -> bool:
        event = self.overflow.flush(time.time(), force=force)
        if event is not None:
            self.record_event(event)
        return event is not None

    # -- running ----------------------------------------------------------------------------

    async def run(self, *, http: bool = True, on_ready: Callable[[Agent], None] | None = None) -> None:
        cfg = self.config
        if tune_allocator():  # large transient blocks go back to the system (edge_agent/ops/memory.py)
            log.debug("malloc: mmap threshold %d bytes, trim threshold %d bytes", MMAP_THRESHOLD, TRIM_THRESHOLD)
        buffer_path = cfg.data_dir / "buffer.sqlite"
        client = self._client() if cfg.collector is not None else None  # a bad certificate fails before anything runs
        try:
            self.buffer = await asyncio.to_thread(
                Buffer, buffer_path,
                max_rows=cfg.buffer.max_rows, max_bytes=cfg.buffer.max_bytes, on_full=cfg.buffer.on_full,
                synchronous=cfg.buffer.synchronous, integrity_check=cfg.buffer.integrity_check,
            )
        except BaseException:
            if client is not None:
                await client.aclose()
            raise
        if self.buffer.moved_aside is not None:
            moved = self.buffer.moved_aside
            self.record_event(Event(GATEWAY, "buffer_corrupt", {
                "moved_to": moved.moved_to.name, "problem": moved.problem,
            }))
        self.writer = Writer(self.buffer, self.queue, cfg.buffer.write_batch)
        self.writer.on_dropped = self._on_dropped
        self.writer.on_event = self.record_event
        restored = await self.writer.call(self.buffer.latest_samples)
        for sample in restored:
            self.latest.setdefault(sample.device, {})[sample.tag] = sample
        self.live.restore(restored)  # shown as stale until fresh values arrive
        await self._refill_oee()
        scheduler = self.scheduler = AsyncIOScheduler(timezone="UTC")
        server = None
        try:
            async with asyncio.TaskGroup() as tg:
                writer_task = self._writer_task = tg.create_task(self.writer.run(), name="buffer-writer")
                self._tg = tg
                for device in cfg.devices:
                    self._start_device(device)
                tg.create_task(self._reload_loop(), name="reload")
                if cfg.sparkplug_node is not None and cfg.sparkplug_node.enabled:
                    from edge_agent.edge_node.publisher import EdgeNodePublisher

                    self.edge_node = EdgeNodePublisher(cfg.sparkplug_node, cfg.gateway_id, cfg.data_dir,
                                                       computed=self._computed_metrics)
                    self._edge_node_task = tg.create_task(self.edge_node.run(), name="sparkplug-node")
                self.record_event(Event(GATEWAY, "agent_started", {
                    "devices": [d.name for d in cfg.devices], "version": _version(),
                }))
                if cfg.collector is not None and client is not None:
                    col = cfg.collector
                    self.uploader = Uploader(
                        _BufferSource(self.writer), client,
                        gateway_id=cfg.gateway_id, url=col.url, api_key=col.api_key,
                        batch_size=col.batch_size, batch_max_bytes=col.batch_max_bytes,
                        backoff_initial_s=col.backoff_initial_s, backoff_max_s=col.backoff_max_s,
                        gzip_level=col.gzip_level, compression=col.compression,
                        on_event=lambda kind, attrs: self.record_event(Event(GATEWAY, kind, attrs)),
                    )
                    self._schedule_sync(scheduler, _soon())
                    scheduler.add_job(self._sync_guard, "interval", seconds=SYNC_GUARD_S, args=[scheduler],
                                      id="sync-guard", max_instances=1, coalesce=True)
                scheduler.add_job(self._prune, "interval", seconds=PRUNE_INTERVAL_S, id="prune", max_instances=1,
                                  coalesce=True)
                scheduler.add_job(self._overflow_job, "interval", seconds=OVERFLOW_FLUSH_S, id="overflow",
                                  max_instances=1, coalesce=True)
                if self.recorder is not None:
                    scheduler.add_job(self._behaviour_job, "interval", seconds=cfg.behaviour.tick_interval_s,
                                      id="behaviour", max_instances=1, coalesce=True)
                scheduler.start()
                if http:
                    from edge_agent.status.app import serve

                    server = await serve(self, tg)
                self.ready.set()
                self.notifier.ready(f"{len(cfg.devices)} devices")
                interval = watchdog_interval()
                if interval is not None and self.notifier.enabled:
                    watchdog = tg.create_task(feed_watchdog(self.notifier, interval, self._healthy), name="watchdog")
                else:
                    watchdog = None
                if on_ready:
                    on_ready(self)
                await self.stopping.wait()
                self.notifier.stopping()
                if watchdog is not None:
                    watchdog.cancel()
                # orderly shutdown: stop reading, keep what was read, then stop the rest
                connector_tasks = list(self._device_tasks.values())
                for task in connector_tasks:
                    task.cancel()
                await asyncio.gather(*connector_tasks, return_exceptions=True)
                if self._edge_node_task is not None:  # publishes its NDEATH and disconnects
                    self._edge_node_task.cancel()
                    await asyncio.gather(self._edge_node_task, return_exceptions=True)
                self._flush_behaviour()
                self._reload_requested.set()  # ends the reload loop
                self.writer.stop()
                await writer_task
                await self.writer.flush()
                for _ in range(3):  # the last drops' event (committing it may drop a few more)
                    if not self._flush_overflow(force=True):
                        break
                    await self.writer.flush()
                scheduler.shutdown(wait=False)
                if self.uploader is not None:
                    await self._final_sync(self.uploader)
                if server is not None:
                    server.should_exit = True
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            if client is not None:
                await client.aclose()
            self.writer.close()
            log.info("agent stopped")

    def stop(self) -> None:
        self.stopping.set()

    # -- devices and reload -----------------------------------------------------------------------

    def _start_device(self, device: Device) -> None:
        assert self._tg is not None
        sink = DeviceSink(self, device)
        self.sinks[device.name] = sink
        if device.profile.oee is not None and device.name not in self.oee_engines:
            self.oee_engines[device.name] = LiveOee(
                device.name, device.profile.oee, self.config.calendar, options=options_for_profile(device.profile)
            )
        if device.profile.oee is not None and self.recorder is not None and device.name not in self.machine_events:
            self.machine_events[device.name] = MachineEvents(
                device.name, device.profile.oee, options_for_profile(device.profile),
                part_interval_s=self.config.behaviour.part_count_interval_s,
            )
        self._add_maintenance(device)
        self._device_tasks[device.name] = self._tg.create_task(self._run_device(device, sink), name=device.name)

    def _add_maintenance(self, device: Device) -> None:
        """The anomaly monitor and health tracker of a device whose profile has a ``[maintenance]`` table.

        Imported here, not at the top: the maintenance package brings numpy (about 17 MB of RSS), which a
        gateway without predictive maintenance never needs.
        """
        maintenance = device.profile.maintenance
        if maintenance is None:
            return
        from edge_agent.maintenance.monitor import AnomalyMonitor
        from edge_agent.maintenance.tracker import health_tracker, wants_health

        if maintenance.anomaly_tags and device.name not in self.monitors:
            self.monitors[device.name] = AnomalyMonitor(device.name, maintenance)
        if wants_health(maintenance) and device.name not in self.health_trackers:
            self.health_trackers[device.name] = health_tracker(
                device.name, maintenance, self.monitors.get(device.name), self.config.calendar.tz
            )

    async def _stop_device(self, name: str) -> None:
        task = self._device_tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.sinks.pop(name, None)
        self.oee_engines.pop(name, None)
        machine = self.machine_events.pop(name, None)
        if machine is not None:
            for event in machine.flush():
                self.record_event(event)
        self.monitors.pop(name, None)
        self.health_trackers.pop(name, None)
        self.latest.pop(name, None)
        if self.edge_node is not None:
            self.edge_node.forget(name)  # DDEATH; a device that comes back is born again

    def request_reload(self) -> None:
        """Ask for a config reload (SIGHUP); done by the reload task, one at a time."""
        self._reload_requested.set()

    async def _reload_loop(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            if self.stopping.is_set():
                return
            await self.reload()

    async def reload(self) -> list[str]:
        """Re-read the config file: added devices start, removed ones stop, changed ones restart.

        The buffer, the sync position and the live state of unchanged devices are kept. An invalid
        config is rejected with its problems (returned) and the running one stays.
        """
        try:
            new = await asyncio.to_thread(load_config, self.config.path)
        except ConfigError as exc:
            log.error("config reload rejected, the previous config keeps running:\n  %s", "\n  ".join(exc.problems))
            self.record_event(Event(GATEWAY, "config_reload_failed", {"problems": exc.problems}))
            return exc.problems
        from edge_agent.ops.logs import reconfigure  # log levels apply at once, the command line's on top
        reconfigure(new)
        old = {d.name: d for d in self.config.devices}
        fresh = {d.name: d for d in new.devices}
        removed = [n for n in old if n not in fresh]
        added = [n for n in fresh if n not in old]
        changed = [n for n in fresh if n in old and fresh[n] != old[n]]
        for name in removed + changed:
            await self._stop_device(name)
        keys = ("gateway_id", "data_dir", "http", "buffer", "collector", "calendar", "status", "users", "twin",
                "alarms", "behaviour", "sparkplug_node")
        later = [k for k in keys if _comparable(getattr(new, k)) != _comparable(getattr(self.config, k))]
        self.config = dataclasses.replace(self.config, devices=new.devices)
        if self.recorder is not None:
            self.recorder.options = self._recorder_options()  # machines added or removed
        self.live.set_devices([fresh[n] for n in added + changed], removed + changed)
        for name in added + changed:
            self._start_device(fresh[name])
        log.info("config reloaded: %d added, %d removed, %d changed%s", len(added), len(removed), len(changed),
                 f"; {', '.join(later)} take effect after a restart" if later else "")
        self.record_event(Event(GATEWAY, "config_reloaded", {
            "added": added, "removed": removed, "changed": changed, "restart_needed_for": later,
        }))
        return []

    async def _refill_oee(self) -> None:
        """After a restart, give the live OEE engines what the buffer holds of the current day and shift,
        so the day's and the shift's figures (and their rollups) include the time before the restart.

        Runs before the connectors start: an engine takes each tag's samples in time order. Machine
        events are not fed (they were recorded the first time)."""
        if not self.oee_engines or self.writer is None or self.buffer is None:
            return
        now = time.time()
        tz = self.config.calendar.tz
        since = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        for shift in self.config.calendar.shifts(now - 86_400.0, now + 1.0):
            if shift.start <= now < shift.end:
                since = min(since, shift.start)
        devices, fed, seq = list(self.oee_engines), 0, 0
        started = time.monotonic()
        while True:
            page, last = await self.writer.call(self.buffer.samples_since, since, devices, seq)
            if last == seq:  # nothing more stored
                break
            seq = last
            for sample in page:
                engine = self.oee_engines.get(sample.device)
                if engine is not None and sample.tag in engine.tags:
                    engine.feed(sample)
                    fed += 1
        if fed:
            log.info("OEE: %d samples of the current day and shift read back from the buffer in %.1f s",
                     fed, time.monotonic() - started)

    def shift_oee(self) -> dict[str, OeeResult]:
        """Live OEE of each OEE device over its current shift (so far); devices outside a shift are left out."""
        now = time.time()
        results = {name: engine.current_shift(now) for name, engine in self.oee_engines.items()}
        return {name: r for name, r in results.items() if r is not None}

    def _computed_metrics(self) -> dict[str, dict[str, Value]]:
        """Figures the Sparkplug edge node publishes as metrics of their device: live OEE of the
        current shift, and the health index where predictive maintenance runs."""
        out: dict[str, dict[str, Value]] = {}
        for name, result in self.shift_oee().items():
            if result is not None:
                out[name] = {
                    "OEE/oee": round(result.oee, 6), "OEE/availability": round(result.availability, 6),
                    "OEE/performance": round(result.performance, 6), "OEE/quality": round(result.quality, 6),
                    "OEE/good_count": result.good_count, "OEE/scrap_count": result.scrap_count,
                }
        for name, tracker in self.health_trackers.items():
            figures = tracker.figures()
            if figures is not None and figures.index is not None:
                out.setdefault(name, {})["Health/index"] = round(float(figures.index), 3)
        return out

    def _healthy(self) -> bool:
        """For the watchdog: the loop runs (we are called from it) and the writer task is alive."""
        return self._writer_task is not None and not self._writer_task.done()

    async def _run_device(self, device: Device, sink: DeviceSink) -> None:
        """Run one connector forever; a bug that escapes it restarts it instead of stopping the agent."""
        connector_cls = connector_class(device.protocol)
        backoff = Backoff(1.0, 60.0)
        while True:
            connector = connector_cls(device, self.config.gateway_id)
            try:
                await connector.run(sink, backoff.reset)
                return
            except asyncio.CancelledError:
                sink.status.state = "stopped"
                raise
            except Exception as exc:
                log.exception("%s: connector crashed, restarting", device.name)
                sink.disconnected(exc)
                await backoff.wait()

    async def _prune(self) -> None:
        """Delete synced rows past retention, then give free space back to the file system."""
        assert self.writer is not None and self.buffer is not None
        older_than = time.time() - self.config.buffer.retention_s
        try:
            await self.writer.call(self.buffer.prune, older_than)
            released = await self.writer.call(self.buffer.reclaim)
        except StoreError as exc:
            log.debug("buffer prune skipped: %s", exc)
            return
        if released:
            log.info("buffer: returned %.1f MB of free space to the file system",
                     released * self.buffer.page_size / 1e6)

    async def _final_sync(self, uploader: Uploader) -> None:
        """At shutdown: end the running round, then one short round for what was just flushed."""
        uploader.interrupt()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                async with self._sync_lock:
                    await uploader.sync_once(budget_s=2.0)

    def _schedule_sync(self, scheduler: AsyncIOScheduler, when: datetime) -> None:
        """Run one sync round at ``when``; each round schedules the next ``interval_s`` after it ends,
        so a long drain round never overlaps the next one and a late start is never skipped.

        ``max_instances=2``: the round that schedules its successor is itself still running for the
        scheduler until it returns; with 1, a busy loop could make the scheduler skip the successor,
        ending the chain (and :meth:`_sync_guard` would have to restart it)."""
        scheduler.add_job(self._sync, "date", run_date=when, args=[scheduler], id="sync", replace_existing=True,
                          misfire_grace_time=None, max_instances=2)

    async def _sync_guard(self, scheduler: AsyncIOScheduler) -> None:
        """Restart the sync chain if no round is scheduled and none is running (it must never stop)."""
        if self.stopping.is_set() or not scheduler.running:
            return
        if scheduler.get_job("sync") is None and not self._sync_lock.locked():
            log.warning("sync: no round was scheduled; restarting the sync schedule")
            self._schedule_sync(scheduler, _soon())

    async def _sync(self, scheduler: AsyncIOScheduler) -> None:
        assert self.uploader is not None and self.config.collector is not None
        try:
            async with self._sync_lock:
                await self.uploader.sync_once()
        finally:
            if scheduler.running and not self.stopping.is_set():
                self._schedule_sync(scheduler, datetime.now(UTC) + timedelta(seconds=self.config.collector.interval_s))

    def _client(self) -> httpx.AsyncClient:
        """The collector client; certificate paths are relative to the config file."""
        col = self.config.collector
        assert col is not None
        base = self.config.path.resolve().parent

        def resolve(name: str | None) -> str | None:
            return None if name is None else str(base / name)

        return make_client(
            timeout_s=col.timeout_s, verify_tls=col.verify_tls, ca_file=resolve(col.ca_file),
            client_cert=resolve(col.client_cert), client_key=resolve(col.client_key), http2=col.http2,
        )

    # -- status -----------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        assert self.writer is not None and self.buffer is not None
        stats: BufferStats | None
        stats_error: str | None = None
        try:
            stats = self._stats = await self.writer.call(self.buffer.stats)
        except StoreError as exc:  # a failing disk must not take the status page down with it
            stats, stats_error = self._stats, str(exc)
        devices = {}
        for name, sink in self.sinks.items():
            info = sink.status.as_dict()
            info["profile"] = sink.device.profile.profile.name
            info["location"] = sink.device.location.model_dump()
            devices[name] = info
        return {
            "gateway_id": self.config.gateway_id,
            "version": _version(),
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 3),
            "devices": devices,
            "buffer": {
                **(stats.as_dict() if stats is not None else {}),
                "stats_error": stats_error,
                "queued": len(self.queue),
                "queue_size": self.queue.max_samples,
                "write": self.writer.health(),
                "write_failures": self.writer.failures,
                "write_error": self.writer.last_error,
                "on_full": self.config.buffer.on_full,
                "overflow_events": self.overflow.events_emitted,
                "moved_aside": None if self.buffer.moved_aside is None else {
                    "to": self.buffer.moved_aside.moved_to.name, "problem": self.buffer.moved_aside.problem,
                },
            },
            "sync": self.uploader.status.as_dict() if self.uploader else {"last_result": "disabled"},
            "sparkplug_node": self.edge_node.status() if self.edge_node is not None else None,
            "memory": usage(),
        }


def energy_tag(profile: Profile) -> str | None:
    """The profile's cumulative energy tag: the first tag in kWh (for energy per good part)."""
    return next((t.name for t in profile.tags if t.unit.strip().lower() == "kwh"), None)


def _comparable(value: Any) -> Any:
    """Calendars compare by their spec (two loads of one file are equal)."""
    return getattr(value, "spec", value)


def _soon() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=0.5)


def _version() -> str:
    from edge_agent import __version__

    return __version__
