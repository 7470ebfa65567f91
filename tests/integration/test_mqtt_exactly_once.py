"""MQTT QoS 1 with the agent killed by SIGKILL while a publisher sends numbered messages:
after restarts every message is stored exactly once (acknowledged only after commit, and
redeliveries of committed messages recognised by their delivery marks)."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from tests.conftest import free_port
from tests.peers.peer_testkit import Mosquitto

MESSAGES = 3000
KILLS = 6


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto of our own, configured as docs/mosquitto.conf asks (no queue limit for a slow subscriber)."""
    port = free_port()
    broker = Mosquitto(tmp_path, f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                                 "max_inflight_messages 100\npersistence false\n", [port])
    broker.start()
    yield port
    broker.stop()


def write_files(tmp_path: Path, broker: int, http: int) -> Path:
    (tmp_path / "counter.toml").write_text(textwrap.dedent("""
        protocol = "mqtt"
        [profile]
        name = "counter"
        [mqtt]
        topic = "test/counter/{device}"
        [[tags]]
        name = "n"
        type = "int64"
        field = "n"
    """))
    config = tmp_path / "agent.toml"
    config.write_text(textwrap.dedent(f"""
        gateway_id = "eo-gw"
        data_dir = "data"
        [http]
        listen = "127.0.0.1:{http}"
        [buffer]
        write_batch = 200
        [[devices]]
        name = "counter-1"
        profile = "counter.toml"
        [devices.connection]
        broker = "mqtt://127.0.0.1:{broker}"
        qos = 1
    """))
    return config


def start_agent(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_connected(http: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the agent exited"
        try:
            status = httpx.get(f"http://127.0.0.1:{http}/api/v1/status", timeout=1).json()
            if status["devices"]["counter-1"]["state"] == "connected":
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("the agent did not connect to the broker")


def stored(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        return [int(v) for (v,) in conn.execute("SELECT value FROM samples WHERE tag = 'n' ORDER BY seq")]


def publish_all(port: int, done: threading.Event) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="eo-publisher")
    client.max_inflight_messages_set(50)
    client.connect("127.0.0.1", port)
    client.loop_start()
    pending = []
    for n in range(MESSAGES):
        pending.append(client.publish("test/counter/counter-1", orjson.dumps({"n": n}), qos=1))
        if len(pending) >= 500:  # a window: message ids are 16-bit
            for info in pending:
                info.wait_for_publish(30)
            pending.clear()
        if n % 50 == 0:
            time.sleep(0.01)  # spread the load over the kills
    for info in pending:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()
    done.set()


def test_sigkill_during_qos1_stream_stores_every_message_once(tmp_path: Path, private_broker: int) -> None:
    http = free_port()
    config = write_files(tmp_path, private_broker, http)
    rng = random.Random(7)
    agent = start_agent(config)
    try:
        wait_connected(http, agent)  # the persistent session exists before anything is published
        done = threading.Event()
        publisher = threading.Thread(target=publish_all, args=(private_broker, done), daemon=True)
        publisher.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 0.8))
            agent.send_signal(signal.SIGKILL)
            agent.wait()
            agent = start_agent(config)
            wait_connected(http, agent)
        publisher.join(120)
        assert done.is_set(), "the publisher did not finish"
        deadline = time.monotonic() + 60
        while len(stored(tmp_path)) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # anything still redelivered would show up as a duplicate now
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    values = stored(tmp_path)
    duplicates = len(values) - len(set(values))
    missing = sorted(set(range(MESSAGES)) - set(values))
    assert duplicates == 0, f"{duplicates} messages stored twice"
    assert missing == [], f"{len(missing)} messages lost, e.g. {missing[:10]}"
