"""MQTT: messages/s through the agent's connector into SQLite vs a bare paho subscriber, same broker.

    python bench/mqtt.py [--messages N] [--rounds N] [--qos 0|1] [--json PATH]

A Mosquitto of its own (started from this file, with the queue and in-flight settings of
docs/mosquitto.conf, and QoS 0 messages queued for offline sessions too) holds a persistent
session for each subscriber. Per round:

1. the subscriber's session is created and left offline;
2. N JSON messages at ``--qos`` (default 1) (the vibration_sensor format) are published and queued by the broker;
3. the subscriber connects and drains them; the time from its connect to the N-th message is
   measured.

* bare: a paho subscriber that counts messages (automatic acknowledgements);
* agent: the MqttConnector decoding the profile's five tags into a sink that appends the samples
  to SQLite (WAL, synchronous=NORMAL, one transaction per drained batch) and acknowledges each
  message after the commit that holds it.

It prints messages/s for each and the agent's ratio to the bare subscriber (medians).
"""

from __future__ import annotations

import argparse
import asyncio
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


def bare(port: int, count: int, client_id: str, prepare: bool, qos: int = 1) -> float:
    """Seconds a bare paho subscriber needs to receive ``count`` queued messages (0 when preparing)."""
    done = threading.Event()
    received = 0

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    def on_connect(c: mqtt.Client, *_: object) -> None:
        c.subscribe(TOPIC, qos=qos)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = on_message
    client.on_connect = on_connect
    start = time.perf_counter()
    client.connect("127.0.0.1", port)
    client.loop_start()
    if prepare:
        time.sleep(0.5)
        elapsed = 0.0
    else:
        if not done.wait(300):
            raise SystemExit(f"bare subscriber got {received} of {count}")
        elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return elapsed


class SqliteSink:
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
            rows = [(s.device, s.tag, s.ts, s.value, int(s.quality)) for samples, _ in items for s in samples]
            await asyncio.to_thread(self._commit, rows)
            for _, on_commit in items:
                if on_commit is not None:
                    on_commit()
            self.on_commit(len(rows))

    def _commit(self, rows: list[tuple[object, ...]]) -> None:
        with self.db:
            self.db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?)", rows)

    def event(self, event: Event) -> None:
        pass

    def connected(self) -> None:
        self.status.state = "connected"

    def disconnected(self, error: BaseException | str) -> None:
        self.status.errors += 1


async def agent(port: int, count: int, client_id: str, db: Path, prepare: bool, qos: Literal[0, 1] = 1) -> float:
    """Seconds the MqttConnector needs to commit ``count`` queued messages (0 when preparing)."""
    done = asyncio.Event()
    committed = 0

    def rows(n: int) -> None:
        nonlocal committed
        committed += n
        if committed >= 5 * count:  # five tags per message
            done.set()

    sink = SqliteSink(db, rows)
    conn = MqttConnection(broker=f"mqtt://127.0.0.1:{port}", client_id=client_id, qos=qos)
    profile = load_profile(shipped_profiles_dir() / "vibration_sensor.toml")
    assert isinstance(profile, MqttProfile)
    profile = profile.model_copy(update={"mqtt": profile.mqtt.model_copy(update={"topic": TOPIC})})
    device = Device("vib-1", profile, Path("bench.toml"), conn, Location())
    writer = asyncio.create_task(sink.writer())
    start = time.perf_counter()
    task = asyncio.create_task(MqttConnector(device, "bench").run(sink, lambda: None))
    try:
        if prepare:
            await asyncio.sleep(0.5)
            return 0.0
        await asyncio.wait_for(done.wait(), 300)
        return time.perf_counter() - start
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        sink.db.close()


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1)
    add_json_argument(parser)
    args = parser.parse_args()
    n = args.messages
    q: Literal[0, 1] = 0 if args.qos == 0 else 1
    rates: dict[str, list[float]] = {"bare": [], "agent": []}
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
                rates["bare"].append(n / bare(port, n, bare_id, prepare=False, qos=q))
                asyncio.run(agent(port, n, agent_id, db, prepare=True, qos=q))
                publish(port, n, q)
                rates["agent"].append(n / asyncio.run(agent(port, n, agent_id, db, prepare=False, qos=q)))
                with sqlite3.connect(db) as check:
                    rows = check.execute("SELECT count(*) FROM samples").fetchone()[0]
                assert rows == 5 * n, f"{rows} rows stored, expected {5 * n}"
        finally:
            broker.terminate()
            broker.wait(10)
    print(f"{n} queued QoS {q} messages drained from Mosquitto; medians of {args.rounds} rounds:")
    print(f"  bare paho subscriber:          {median(rates['bare']):8.0f} msgs/s")
    print(f"  agent MqttConnector -> SQLite: {median(rates['agent']):8.0f} msgs/s "
          f"({5 * median(rates['agent']):.0f} samples/s committed{', acknowledged after commit' if q else ''})")
    agent_rate, bare_rate = median(rates["agent"]), median(rates["bare"])
    print(f"agent / bare paho: {agent_rate / bare_rate:.2f}")
    acked = ", acknowledged after commit" if q else ""
    write_rows(args.json, [
        Row(f"MQTT QoS {q}", f"MqttConnector draining {n:,} queued messages (5 tags each) into SQLite{acked}",
            round(agent_rate), "msgs/s", round(bare_rate), "msgs/s (bare paho subscriber)",
            round(agent_rate / bare_rate, 2), ">= 0.8", agent_rate / bare_rate >= 0.8),
    ])


if __name__ == "__main__":
    main()
