"""SIGHUP reload with data flowing: added devices start, removed ones stop, an invalid config is
rejected and the running one stays; no sample of an unchanged device is lost across the reload."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt

from tests.conftest import free_port, service_up

PROFILE = """
protocol = "mqtt"
[profile]
name = "counter"
[mqtt]
topic = "test/reload/{device}"
[[tags]]
name = "n"
type = "int64"
field = "n"
"""


def device(name: str, broker: str, run: str) -> str:
    return textwrap.dedent(f"""
        [[devices]]
        name = "{name}"
        profile = "counter.toml"
        [devices.connection]
        broker = "{broker}"
        device_id = "{run}-{name}"
        client_id = "{run}-{name}"
    """)


def status(http: int) -> dict:
    return dict(httpx.get(f"http://127.0.0.1:{http}/api/v1/status", timeout=2).json())


def wait(check, timeout: float = 20, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sighup_adds_removes_and_rejects(tmp_path: Path, mosquitto: str) -> None:
    run = uuid.uuid4().hex[:6]
    http = free_port()
    (tmp_path / "counter.toml").write_text(PROFILE)
    head = f'gateway_id = "reload-gw"\ndata_dir = "data"\n[http]\nlisten = "127.0.0.1:{http}"\n'
    config = tmp_path / "agent.toml"
    config.write_text(head + device("a", mosquitto, run) + device("b", mosquitto, run))
    host, port = mosquitto.removeprefix("mqtt://").split(":")
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{run}")
    pub.connect(host, int(port))
    pub.loop_start()
    stop = threading.Event()
    sent = {"a": 0}

    def publish_a() -> None:  # device a keeps sending through the reloads
        while not stop.is_set():
            pub.publish(f"test/reload/{run}-a", orjson.dumps({"n": sent["a"]}), qos=1).wait_for_publish(5)
            sent["a"] += 1
            time.sleep(0.005)

    proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    thread = threading.Thread(target=publish_a, daemon=True)
    try:
        wait(lambda: service_up("127.0.0.1", http), what="agent up")
        wait(lambda: all(d["state"] == "connected" for d in status(http)["devices"].values())
             and len(status(http)["devices"]) == 2, what="a and b connected")
        thread.start()
        time.sleep(0.5)
        # remove b, add c
        config.write_text(head + device("a", mosquitto, run) + device("c", mosquitto, run))
        proc.send_signal(signal.SIGHUP)
        wait(lambda: set(status(http)["devices"]) == {"a", "c"}, what="b removed, c added")
        wait(lambda: status(http)["devices"]["c"]["state"] == "connected", what="c connected")
        pub.publish(f"test/reload/{run}-c", orjson.dumps({"n": 7}), qos=1).wait_for_publish(5)
        wait(lambda: status(http)["devices"]["c"]["samples"] == 1, what="c's sample")
        # an invalid config is rejected, the running one stays
        config.write_text(head + device("a", mosquitto, run).replace("broker =", "brokr ="))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert set(status(http)["devices"]) == {"a", "c"}
        stop.set()
        thread.join(10)
        total = sent["a"]
        wait(lambda: status(http)["devices"]["a"]["samples"] >= total, what="every sample of a")
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        pub.loop_stop()
        pub.disconnect()
    assert proc.returncode == 0, err[-2000:]
    assert "config reloaded: 1 added, 1 removed, 0 changed" in err
    assert "config reload rejected" in err and "devices[0].connection.brokr: unknown key" in err
    with sqlite3.connect(tmp_path / "data" / "buffer.sqlite") as conn:
        values = [int(v) for (v,) in conn.execute("SELECT value FROM samples WHERE device = 'a' ORDER BY seq")]
        kinds = [k for (k,) in conn.execute("SELECT kind FROM events WHERE kind LIKE 'config_%' ORDER BY seq")]
    assert sorted(values) == list(range(total)), "a sample of the unchanged device was lost or doubled"
    assert kinds == ["config_reloaded", "config_reload_failed"]
