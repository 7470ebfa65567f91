"""Run the real collector as a child process, as it runs in production."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import service_up


class CollectorProcess:
    def __init__(self, port: int, db: Path, api_key: str = "test-key") -> None:
        self.port = port
        self.db = db
        self.api_key = api_key
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> CollectorProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloud_sync.collector", "serve", "--db", f"sqlite:///{self.db}",
             "--listen", f"127.0.0.1:{self.port}", "--api-key", self.api_key],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while not service_up("127.0.0.1", self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"collector exited: {err}")
            if time.monotonic() > deadline:
                raise RuntimeError("collector did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)

    def stats(self, gateway: str) -> dict[str, int]:
        response = httpx.get(f"{self.url}/api/v1/stats", timeout=5)
        response.raise_for_status()
        return dict(response.json()["gateways"].get(gateway, {}))
