"""Real processes for the store-and-forward proofs: the agent (``python -m edge_agent run``), the
simulated plant (``python -m simulators plant``) and the collector, each on free loopback ports."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port, service_up

GW = "sf-gw"
API_KEY = "sf-key"


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}:\n{tail}")
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")
        time.sleep(0.05)


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self.proc

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait (SIGKILL if it does not stop in time)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


class Collector(Proc):
    def __init__(self, tmp: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.db = tmp / "collector.sqlite"
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([sys.executable, "-m", "cloud_sync.collector", "serve", "--db", f"sqlite:///{self.db}",
                          "--listen", f"127.0.0.1:{self.port}", "--api-key", API_KEY,
                          "--rate-limit-batches-per-s", "0"], tmp / "collector.log")

    def start(self) -> Collector:
        proc = self.spawn()
        wait_for(lambda: service_up("127.0.0.1", self.port), 20, "the collector", proc, self.log)
        return self

    def rows(self, stream: str = "samples") -> list[tuple[Any, ...]]:
        columns = "seq, device, tag, ts, value, quality" if stream == "samples" else "seq, event_id, kind"
        with sqlite3.connect(self.db) as conn:
            return list(conn.execute(f"SELECT {columns} FROM {stream} WHERE gateway_id = ? ORDER BY seq", (GW,)))

    def batches(self) -> list[tuple[int, int, float]]:
        """(first_seq, last_seq, received_at) of every samples batch, in arrival order."""
        with sqlite3.connect(self.db) as conn:
            return list(conn.execute(
                "SELECT first_seq, last_seq, received_at FROM batches WHERE gateway_id = ? AND stream = 'samples' "
                "ORDER BY received_at", (GW,)))


    def duplicate_batches(self) -> int:
        """Batches this gateway sent again after the collector had stored them."""
        with sqlite3.connect(self.db) as conn:
            row = conn.execute("SELECT duplicate_batches FROM gateways WHERE gateway_id = ?", (GW,)).fetchone()
            return int(row[0]) if row else 0


class Plant(Proc):
    def __init__(self, tmp: Path, cnc: int = 2) -> None:
        self.modbus_port = free_port()
        super().__init__([sys.executable, "-m", "simulators", "plant", "--seed", "11", "--cnc", str(cnc),
                          "--lines", "0", "--sensors", "0", "--mqtt-url", "none",
                          "--modbus-port", str(self.modbus_port), "--quiet"], tmp / "plant.log")

    def start(self) -> Plant:
        proc = self.spawn()
        wait_for(lambda: service_up("127.0.0.1", self.modbus_port), 20, "the simulated plant", proc, self.log)
        return self


class Agent(Proc):
    def __init__(self, tmp: Path, config: Path, http_port: int) -> None:
        self.tmp = tmp
        self.http_port = http_port
        self.buffer = tmp / "data" / "buffer.sqlite"
        super().__init__([sys.executable, "-m", "edge_agent", "run", "--config", str(config)], tmp / "agent.log")

    def start(self, wait: bool = True) -> Agent:
        proc = self.spawn()
        if wait:
            wait_for(self.healthy, 30, "the agent", proc, self.log)
        return self

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> dict[str, Any]:
        response = httpx.get(f"http://127.0.0.1:{self.http_port}/api/v1/status", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def rows(self, stream: str = "samples") -> list[tuple[Any, ...]]:
        columns = "seq, device, tag, ts, value, quality" if stream == "samples" else "seq, id, kind"
        with sqlite3.connect(self.buffer) as conn:
            return list(conn.execute(f"SELECT {columns} FROM {stream} ORDER BY seq"))

    def counters(self) -> dict[str, int]:
        with sqlite3.connect(self.buffer) as conn:
            return dict(conn.execute("SELECT name, value FROM counters"))


def agent_config(tmp: Path, *, modbus_port: int, http_port: int, collector_url: str | None,
                 buffer: str = "", collector: str = "", poll_s: float = 0.05, cnc: int = 2) -> Path:
    """An agent config reading ``cnc`` simulated CNC machines over Modbus TCP."""
    text = f"""
    gateway_id = "{GW}"
    data_dir = "data"
    log_level = "info"
    [http]
    listen = "127.0.0.1:{http_port}"
    [buffer]
    retention_s = 3600
    {textwrap.dedent(buffer).strip()}
    """
    if collector_url:
        text += f"""
    [collector]
    url = "{collector_url}"
    api_key = "{API_KEY}"
    {textwrap.dedent(collector).strip()}
    """
    for unit in range(1, cnc + 1):
        text += f"""
    [[devices]]
    name = "cnc-{unit}"
    profile = "cnc_vmc"
    [devices.connection]
    host = "127.0.0.1"
    port = {modbus_port}
    unit_id = {unit}
    poll_interval_s = {poll_s}
    reconnect_delay_s = 0.1
    reconnect_delay_max_s = 0.5
    """
    path = tmp / "agent.toml"
    path.write_text(textwrap.dedent(text))
    return path
