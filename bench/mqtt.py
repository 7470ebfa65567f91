"""MQTT: messages/s through the agent's connector into its buffer vs a bare paho subscriber, same broker.

    python bench/mqtt.py [--messages N] [--rounds N] [--qos 0|1] [--sink buffer|sqlite] [--profile N] [--json PATH]

A Mosquitto of its own (started from this file, with the queue and in-flight settings of
docs/mosquitto.conf, and QoS 0 messages queued for offline sessions too) holds a persistent
session for each subscriber. Per round:

1. the subscriber's session is created and left offline;
2. N JSON messages at ``--qos`` (default 1) (the vibration_sensor format) are published and queued by the broker;
3. the subscriber connects and drains them; the time from its connect to the N-th message is
   measured.

* bare: a paho subscriber that counts messages (paho's own network thread, ``loop_start``;
  automatic acknowledgements at QoS 1);
* agent: the MqttConnector decoding the profile's five tags into a sink whose commit callbacks
  acknowledge each QoS 1 message after the commit that holds it. ``--sink buffer`` (the default):
  the agent's own write path, the bounded ``WriteQueue``, the ``Writer`` and the SQLite ``Buffer``
  with the agent's default settings, delivery marks included. ``--sink sqlite``: a plain SQLite
  table (WAL, synchronous=NORMAL, one transaction per drained batch, no marks), the set-up of the
  figures measured before the buffer sink existed.

It prints messages/s for each and the agent's ratio to the bare subscriber (medians), every
round's ratio (rounds alternate bare and agent, so a change in the machine's load hits both), and
the CPU time of this process per message on each side, from the connect to the last message
received (bare) or committed (agent) (all its threads; the broker is another process), which a
busy machine disturbs less than the rates. ``--profile N`` prints the N functions
with the most CPU time of each side's last round (cProfile timed on ``time.process_time``; the
thread doing the work: paho's network thread of the bare subscriber, the agent's event loop,
not its buffer thread).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import orjson
import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import Row, add_json_argument, write_rows
from edge_agent.buffer.store import Buffer
from edge_agent.buffer.writer import Item, WriteQueue, Writer
from edge_agent.config import Device, Location
from edge_agent.connectors.base import CommitCallback, DeviceStatus
from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.connectors.mqtt.connector import MqttConnector
from edge_agent.model import Event, Mark, Sample
from edge_agent.profiles import MqttProfile, load_profile, shipped_profiles_dir

TOPIC = "bench/sensors/vib-1/telemetry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(folder: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 1000000\nmax_queued_bytes 0\nmax_inflight_messages 1000\nqueue_qos0_messages true\n"
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("mosquitto did not start") from None
            time.sleep(0.05)


def publish(port: int, count: int, qos: int = 1) -> None:
    """Publish ``count`` messages at ``qos`` (QoS 1: with a window of unacknowledged ones)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = []
    for i in range(count):
        doc = {"ts": 1_800_000_000 + i / 1000, "vibration": {"rms": 1.0 + i % 100 / 100, "peak": 0.5, "crest": 3.0},
               "temperature": 40.0, "battery": 90}
        infos.append(client.publish(TOPIC, orjson.dumps(doc), qos=qos))
        if len(infos) >= 5000:
            for info in infos:
                info.wait_for_publish(30)
            infos.clear()
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()


def bare(port: int, count: int, client_id: str, prepare: bool, qos: int = 1,
         profile: cProfile.Profile | None = None, cpu: list[float] | None = None) -> float:
    """Seconds a bare paho subscriber needs to receive ``count`` queued messages (0 when preparing).

    ``profile`` (optional) profiles paho's network thread, from the connection to the last message;
    ``cpu`` (optional) gets the process's CPU seconds over the same span."""
    done = threading.Event()
    received = 0

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received == count:
            if profile is not None:
                profile.disable()
            done.set()

    def on_connect(c: mqtt.Client, *_: object) -> None:
        if profile is not None:
            profile.enable()  # in paho's thread, where the work is
        c.subscribe(TOPIC, qos=qos)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = on_message
    client.on_connect = on_connect
    start, cpu_start = time.perf_counter(), time.process_time()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if prepare:
        time.sleep(0.5)
        elapsed = 0.0
    else:
        if not done.wait(300):
            raise SystemExit(f"bare subscriber got {received} of {count}")
        elapsed = time.perf_counter() - start
        if cpu is not None:
            cpu.append(time.process_time() - cpu_start)
    client.loop_stop()
    client.disconnect()
    return elapsed


class _SinkState:
    """What both sinks tell the connector's status: events are not kept, connects and errors are."""

    status: DeviceStatus

    def event(self, event: Event) -> None:
        pass

    def connected(self) -> None:
        self.status.state = "connected"

    def disconnected(self, error: BaseException | str) -> None:
        self.status.errors += 1


class SqliteSink(_SinkState):
    """A sink that commits samples to SQLite in batches, then runs their commit callbacks (the acks)."""

    def __init__(self, path: Path, on_commit: Callable[[int], None]) -> None:
        self.status = DeviceStatus("bench", "mqtt")
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS samples (device TEXT, tag TEXT, ts REAL, value, quality INTEGER)")
        self.queue: asyncio.Queue[tuple[Sequence[Sample], CommitCallback | None]] = asyncio.Queue(20_000)
        self.on_commit = on_commit

    async def emit(
        self, samples: Sequence[Sample], on_commit: CommitCallback | None = None, marks: Sequence[Mark] = ()
    ) -> None:
        await self.queue.put((samples, on_commit))

    async def delivered(self, source: str) -> dict[int, str]:
        return {}

    async def writer(self) -> None:
        while True:
            items = [await self.queue.get()]
            while not self.queue.empty() and len(items) < 5000:
                items.append(self.queue.get_nowait())
            count = await asyncio.to_thread(self._commit, [samples for samples, _ in items])
            for _, on_commit in items:
                if on_commit is not None:
                    on_commit()
            self.on_commit(count)

    def _commit(self, batches: list[Sequence[Sample]]) -> int:
        # the rows are built on the writing thread, as the agent's Buffer.append does
        rows = [(s.device, s.tag, s.ts, s.value, int(s.quality)) for samples in batches for s in samples]
        with self.db:
            self.db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    def close(self) -> None:
        self.db.close()


class BufferSink(_SinkState):
    """The agent's write path: samples and delivery marks through the bounded WriteQueue to the Writer,
    which commits them to the Buffer on its thread and then runs the commit callbacks (the acks)."""

    def __init__(self, path: Path, on_commit: Callable[[int], None]) -> None:
        self.status = DeviceStatus("bench", "mqtt")
        self.buffer = Buffer(path)
        self.queue = WriteQueue(20_000)  # the agent's defaults: [buffer] queue_size, write_batch
        self.sink_writer = Writer(self.buffer, self.queue, 5_000)
        self.on_commit = on_commit

    async def emit(
        self, samples: Sequence[Sample], on_commit: CommitCallback | None = None, marks: Sequence[Mark] = ()
    ) -> None:
        def committed() -> None:
            if on_commit is not None:
                on_commit()
            self.on_commit(len(samples))

        await self.queue.put(Item(samples, (), committed, marks))

    async def delivered(self, source: str) -> dict[int, str]:
        return await self.sink_writer.call(self.buffer.delivery_marks, source)

    async def writer(self) -> None:
        await self.sink_writer.run()

    def close(self) -> None:
        self.sink_writer.close()


async def agent(port: int, count: int, client_id: str, db: Path, prepare: bool, qos: Literal[0, 1] = 1,
                sink_kind: str = "buffer", cpu: list[float] | None = None) -> float:
    """Seconds the MqttConnector needs to commit ``count`` queued messages (0 when preparing);
    ``cpu`` (optional) gets the process's CPU seconds over the same span (the buffer's opening and
    closing are outside it)."""
    done = asyncio.Event()
    committed = 0

    def rows(n: int) -> None:
        nonlocal committed
        committed += n
        if committed >= 5 * count:  # five tags per message
            done.set()

    sink: BufferSink | SqliteSink = BufferSink(db, rows) if sink_kind == "buffer" else SqliteSink(db, rows)
    conn = MqttConnection(broker=f"mqtt://127.0.0.1:{port}", client_id=client_id, qos=qos)
    profile = load_profile(shipped_profiles_dir() / "vibration_sensor.toml")
    assert isinstance(profile, MqttProfile)
    profile = profile.model_copy(update={"mqtt": profile.mqtt.model_copy(update={"topic": TOPIC})})
    device = Device("vib-1", profile, Path("bench.toml"), conn, Location())
    writer = asyncio.create_task(sink.writer())
    start, cpu_start = time.perf_counter(), time.process_time()
    task = asyncio.create_task(MqttConnector(device, "bench").run(sink, lambda: None))
    try:
        if prepare:
            await asyncio.sleep(0.5)
            return 0.0
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - start
        if cpu is not None:
            cpu.append(time.process_time() - cpu_start)
        return elapsed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        sink.close()


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def timed(run: Callable[[], float], count: int, profile: cProfile.Profile | None = None) -> float:
    """Messages/s of one measured drain (``profile``: profiled in the calling thread)."""
    if profile is not None:
        profile.enable()
    try:
        return count / run()
    finally:
        if profile is not None:
            profile.disable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1)
    parser.add_argument("--sink", choices=("buffer", "sqlite"), default="buffer",
                        help="the agent's Writer and Buffer (default), or a plain SQLite table")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N functions with the most CPU time of each side's last round")
    add_json_argument(parser)
    args = parser.parse_args()
    n = args.messages
    q: Literal[0, 1] = 0 if args.qos == 0 else 1
    rates: dict[str, list[float]] = {"bare": [], "agent": []}
    cpu: dict[str, list[float]] = {"bare": [], "agent": []}
    # as `edge-agent run` does once it runs: what was imported and set up is frozen out of the GC (both sides)
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        broker = start_broker(folder, port)
        try:
            for r in range(args.rounds):
                bare_id, agent_id = f"bare-{r}-{uuid.uuid4().hex[:6]}", f"agent-{r}-{uuid.uuid4().hex[:6]}"
                db = folder / f"agent-{r}.sqlite"
                bare(port, n, bare_id, prepare=True, qos=q)
                publish(port, n, q)
                last = r == args.rounds - 1 and args.profile > 0
                bare_profile = cProfile.Profile(time.process_time) if last else None
                rates["bare"].append(timed(
                    lambda: bare(port, n, bare_id, prepare=False, qos=q, profile=bare_profile,  # noqa: B023
                                 cpu=cpu["bare"]), n))
                asyncio.run(agent(port, n, agent_id, db, prepare=True, qos=q, sink_kind=args.sink))
                publish(port, n, q)
                agent_profile = cProfile.Profile(time.process_time) if last else None
                rates["agent"].append(timed(
                    lambda: asyncio.run(agent(port, n, agent_id, db, prepare=False, qos=q,  # noqa: B023
                                              sink_kind=args.sink, cpu=cpu["agent"])),
                    n, agent_profile))
                with sqlite3.connect(db) as check:
                    rows = check.execute("SELECT count(*) FROM samples").fetchone()[0]
                assert rows == 5 * n, f"{rows} rows stored, expected {5 * n}"
        finally:
            broker.terminate()
            broker.wait(10)
    into = "the agent's buffer (Writer, Buffer)" if args.sink == "buffer" else "a plain SQLite table"
    acked = ", acknowledged after commit" if q else ""
    print(f"{n} queued QoS {q} messages drained from Mosquitto; medians of {args.rounds} rounds:")
    print(f"  bare paho subscriber:          {median(rates['bare']):8.0f} msgs/s")
    print(f"  agent MqttConnector -> {args.sink}: {median(rates['agent']):8.0f} msgs/s "
          f"({5 * median(rates['agent']):.0f} samples/s committed to {into}{acked})")
    agent_rate, bare_rate = median(rates["agent"]), median(rates["bare"])
    per_round = [a / b for a, b in zip(rates["agent"], rates["bare"], strict=True)]
    print(f"agent / bare paho: {agent_rate / bare_rate:.2f} (rounds: {', '.join(f'{r:.2f}' for r in per_round)})")
    cpu_us = {side: median(seconds) / n * 1e6 for side, seconds in cpu.items()}
    print(f"CPU us per message (medians): bare {cpu_us['bare']:.1f}, agent {cpu_us['agent']:.1f}; "
          f"bare / agent {cpu_us['bare'] / cpu_us['agent']:.2f}")
    if args.profile:
        for side, profile in (("bare", bare_profile), ("agent", agent_profile)):
            print(f"--- {side}, last round: top {args.profile} functions by own CPU time")
            assert profile is not None
            pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
    write_rows(args.json, [
        Row(f"MQTT QoS {q}", f"MqttConnector draining {n:,} queued messages (5 tags each) into {into}{acked}",
            round(agent_rate), "msgs/s", round(bare_rate), "msgs/s (bare paho subscriber)",
            round(agent_rate / bare_rate, 2), ">= 0.8", agent_rate / bare_rate >= 0.8,
            extra={"sink": args.sink, "round_ratios": [round(r, 3) for r in per_round],
                   "cpu_us_per_msg": {side: round(value, 1) for side, value in cpu_us.items()}}),
    ])


if __name__ == "__main__":
    main()
