"""The agent: one supervisor that owns the buffer, the connectors, sync and the local HTTP server.

Structured concurrency: every long-running piece is a task of one TaskGroup.
Shutdown order keeps accepted data: connectors stop first, then the write queue is
flushed to SQLite, then sync and the HTTP server stop, then the buffer closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from cloud_sync.uploader import Uploader
from edge_agent.buffer.store import AppendResult, Buffer
from edge_agent.buffer.writer import Item, WriteQueue, Writer
from edge_agent.config import AgentConfig, Device
from edge_agent.connectors import connector_class
from edge_agent.connectors.base import Backoff, CommitCallback, DeviceStatus, describe_error
from edge_agent.model import Event, Sample

log = logging.getLogger("edge_agent")
GATEWAY = "_gateway"


class DeviceSink:
    """The sink one connector writes into; keeps the device's status and latest values."""

    def __init__(self, agent: Agent, device: Device) -> None:
        self.agent = agent
        self.device = device
        self.status = DeviceStatus(device.name, device.protocol)
        self.loop = asyncio.get_running_loop()

    async def emit(self, samples: Sequence[Sample], on_commit: CommitCallback | None = None) -> None:
        if not samples:
            return
        self.status.samples += len(samples)
        self.status.last_sample_ts = samples[-1].ts
        latest = self.agent.latest.setdefault(self.device.name, {})
        for s in samples:
            latest[s.tag] = s
        await self.agent.queue.put(Item(samples, (), on_commit))

    def emit_threadsafe(self, samples: Sequence[Sample], on_commit: CommitCallback | None = None) -> None:
        future = asyncio.run_coroutine_threadsafe(self.emit(samples, on_commit), self.loop)
        future.result()

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

    async def read(self, stream: str, limit: int) -> list[list[Any]]:
        return await self.writer.call(self.writer.buffer.read_unsynced, stream, limit)

    async def ack(self, stream: str, last_seq: int) -> None:
        await self.writer.call(self.writer.buffer.ack, stream, last_seq)

    async def backlog(self) -> dict[str, int]:
        stats = await self.writer.call(self.writer.buffer.stats)
        return dict(stats.unsynced)


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.started_at = time.time()
        self.latest: dict[str, dict[str, Sample]] = {}
        self.sinks: dict[str, DeviceSink] = {}
        self.queue = WriteQueue(config.buffer.queue_size)
        self.buffer: Buffer | None = None
        self.writer: Writer | None = None
        self.uploader: Uploader | None = None
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self.dropped: dict[str, int] = {"dropped_oldest": 0, "dropped_newest": 0}

    # -- events -----------------------------------------------------------------------------

    def record_event(self, event: Event) -> None:
        self.queue.put_nowait(Item((), (event,), None))  # events are never refused

    def _on_dropped(self, result: AppendResult) -> None:
        self.dropped["dropped_oldest"] += result.dropped_oldest
        self.dropped["dropped_newest"] += result.dropped_newest
        log.warning(
            "buffer full (%d rows): dropped %d oldest, %d newest samples (policy %s)",
            self.config.buffer.max_rows, result.dropped_oldest, result.dropped_newest,
            self.config.buffer.on_full,
        )
        self.record_event(Event(GATEWAY, "buffer_overflow", {
            "policy": self.config.buffer.on_full,
            "dropped_oldest": result.dropped_oldest,
            "dropped_newest": result.dropped_newest,
        }))

    # -- running ----------------------------------------------------------------------------

    async def run(self, *, http: bool = True, on_ready: Callable[[Agent], None] | None = None) -> None:
        cfg = self.config
        buffer_path = cfg.data_dir / "buffer.sqlite"
        self.buffer = await asyncio.to_thread(
            Buffer, buffer_path,
            max_rows=cfg.buffer.max_rows, on_full=cfg.buffer.on_full, synchronous=cfg.buffer.synchronous,
        )
        self.writer = Writer(self.buffer, self.queue, cfg.buffer.write_batch)
        self.writer.on_dropped = self._on_dropped
        for sample in await self.writer.call(self.buffer.latest_samples):
            self.latest.setdefault(sample.device, {})[sample.tag] = sample
        scheduler = AsyncIOScheduler(timezone="UTC")
        client: httpx.AsyncClient | None = None
        server = None
        try:
            async with asyncio.TaskGroup() as tg:
                writer_task = tg.create_task(self.writer.run(), name="buffer-writer")
                connector_tasks = []
                for device in cfg.devices:
                    sink = DeviceSink(self, device)
                    self.sinks[device.name] = sink
                    connector_tasks.append(tg.create_task(self._run_device(device, sink), name=device.name))
                self.record_event(Event(GATEWAY, "agent_started", {
                    "devices": [d.name for d in cfg.devices], "version": _version(),
                }))
                if cfg.collector is not None:
                    client = httpx.AsyncClient(timeout=cfg.collector.timeout_s, verify=cfg.collector.verify_tls)
                    self.uploader = Uploader(
                        _BufferSource(self.writer), client,
                        gateway_id=cfg.gateway_id, url=cfg.collector.url, api_key=cfg.collector.api_key,
                        batch_size=cfg.collector.batch_size, backoff_max_s=cfg.collector.backoff_max_s,
                    )
                    scheduler.add_job(self.uploader.sync_once, "interval", seconds=cfg.collector.interval_s,
                                      id="sync", max_instances=1, coalesce=True, next_run_time=_soon())
                scheduler.add_job(self._prune, "interval", seconds=60, id="prune", max_instances=1,
                                  coalesce=True)
                scheduler.start()
                if http:
                    from edge_agent.status.app import serve

                    server = await serve(self, tg)
                self.ready.set()
                if on_ready:
                    on_ready(self)
                await self.stopping.wait()
                # orderly shutdown: stop reading, keep what was read, then stop the rest
                for task in connector_tasks:
                    task.cancel()
                await asyncio.gather(*connector_tasks, return_exceptions=True)
                writer_task.cancel()
                await asyncio.gather(writer_task, return_exceptions=True)
                await self.writer.flush()
                scheduler.shutdown(wait=False)
                if self.uploader is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.uploader.sync_once(), timeout=3)
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
        assert self.writer is not None and self.buffer is not None
        older_than = time.time() - self.config.buffer.retention_s
        await self.writer.call(self.buffer.prune, older_than)

    # -- status -----------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        assert self.writer is not None and self.buffer is not None
        stats = await self.writer.call(self.buffer.stats)
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
                **stats.as_dict(),
                "queued": len(self.queue),
                "queue_size": self.queue.max_samples,
                "write_failures": self.writer.failures,
                "write_error": self.writer.last_error,
            },
            "sync": self.uploader.status.as_dict() if self.uploader else {"last_result": "disabled"},
        }


def _soon() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=0.5)


def _version() -> str:
    from edge_agent import __version__

    return __version__
