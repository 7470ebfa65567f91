"""Helpers of the peer tests: third-party servers and encoders run as child processes.

The node peers (node-opcua, sparkplug-payload, mqtt.js) live in ``tests/peers/node`` and are
installed there with ``npm ci`` when ``node_modules`` is missing. A peer that cannot be
started skips its tests with the reason, except in CI (``CI=true``) where that is a failure.
"""

from __future__ import annotations

import getpass
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "node"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip (or, in CI, fail) the current test because a peer cannot be started."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a peer that cannot be started is a failure)")
    pytest.skip(reason)


def install_node_peers() -> Path:
    """Install the node peers into tests/peers/node once; returns the folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are needed for the node peers")
    if not (NODE_DIR / "node_modules" / ".package-lock.json").exists():
        command = "ci" if (NODE_DIR / "package-lock.json").exists() else "install"
        proc = subprocess.run(
            [str(npm), command, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=600, check=False,
        )
        if proc.returncode != 0:
            unavailable(f"npm {command} in tests/peers/node failed: {proc.stderr.strip()[-500:]}")
    return NODE_DIR


class NodePeer:
    """A node script from tests/peers/node as a child process with line-based stdin/stdout."""

    def __init__(self, script: str, *args: str) -> None:
        self.args = ["node", str(NODE_DIR / script), *args]
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []

    def start(self, ready_prefix: str = "READY", timeout: float = 60.0) -> str:
        """Start the script and wait for its readiness line; returns that line."""
        self.lines = queue.Queue()
        self.stderr = []
        self.proc = subprocess.Popen(
            self.args, cwd=NODE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1,
        )
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append), daemon=True).start()
        return self.expect(ready_prefix, timeout)

    @staticmethod
    def _pump(stream: Any, put: Any) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float = 10.0) -> str:
        """Wait for the next stdout line starting with ``prefix`` (other lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc is not None and self.proc.poll() is not None and self.lines.empty()):
                raise AssertionError(
                    f"{self.args[1]}: no line starting with {prefix!r}; stderr: {' | '.join(self.stderr[-10:])}"
                )
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line

    def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def send_json(self, doc: Any) -> None:
        self.send(json.dumps(doc))

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


class NodeOpcuaServer(NodePeer):
    """The node-opcua server of opcua_server.js on a fixed port (restartable on the same port)."""

    def __init__(self, port: int, pki_dir: Path) -> None:
        super().__init__("opcua_server.js", str(port), str(pki_dir))
        self.port = port
        self.url = f"opc.tcp://127.0.0.1:{port}/"

    def set(self, name: str, value: Any) -> None:
        self.send(f"set {name} {json.dumps(value)}")
        self.expect(f"ok {name}")

    def bad(self, name: str) -> None:
        self.send(f"bad {name}")
        self.expect(f"ok {name}")


def mosquitto_binary() -> str:
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if binary is None:
        unavailable("the mosquitto binary is not installed")
    assert binary is not None
    return binary


class Mosquitto:
    """A Mosquitto broker of our own, started from a config text (for TLS and broker settings tests)."""

    def __init__(self, folder: Path, config: str, ports: list[int]) -> None:
        self.conf = folder / "mosquitto.conf"
        # started as root, mosquitto would switch to the user "mosquitto", who cannot read our temp files
        self.conf.write_text(f"user {getpass.getuser()}\n{config}")
        self.ports = ports
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "mosquitto.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while not all(port_open(port) for port in self.ports):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                unavailable(f"mosquitto did not start: {self.log.read_text()[-500:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
