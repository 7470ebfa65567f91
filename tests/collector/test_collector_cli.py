"""``edge-collector``: argument handling, and the real server in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from collector_testkit import batch_dict, gz, headers

from cloud_sync.collector.cli import ENV_API_KEYS, UsageError, main, parse_api_keys, parse_listen
from cloud_sync.collector.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


def test_api_key_entries() -> None:
    assert parse_api_keys(["k1", " k2=gw-2 ", "", "b64pad==", "b64pad==gw1"]) == {
        "k1": None,
        "k2": "gw-2",
        "b64pad==": None,
        "b64pad=": "gw1",
    }
    with pytest.raises(UsageError, match="invalid gateway id"):
        parse_api_keys(["k=bad gateway"])
    with pytest.raises(UsageError, match="empty key"):
        parse_api_keys(["=gw1"])
    with pytest.raises(UsageError, match="twice"):
        parse_api_keys(["k=gw1", "k=gw2"])


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:8090") == ("0.0.0.0", 8090)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("8090", "host:", ":80", "host:http", "host:70000"):
        with pytest.raises(UsageError):
            parse_listen(bad)


def test_refuses_to_start_without_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_API_KEYS, raising=False)
    assert main(["serve", "--db", f"sqlite:///{tmp_path}/c.db"]) == 2
    assert "without an API key" in capsys.readouterr().err
    assert not (tmp_path / "c.db").exists()


def test_postgresql_is_not_supported_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", "postgresql://collector@db/collector", "--api-key", "k"]) == 2
    assert "not supported yet" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["collector.db", "sqlite://c.db", "mysql://db/c"])
def test_other_database_urls_are_refused(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", url, "--api-key", "k"]) == 2
    assert "sqlite:///PATH" in capsys.readouterr().err


def test_bad_listen_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", f"sqlite:///{tmp_path}/c.db", "--api-key", "k", "--listen", "nope"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """``python -m cloud_sync.collector serve`` as a child process."""

    def __init__(self, db: Path, port: int, keys_env: str) -> None:
        env = {**os.environ, ENV_API_KEYS: keys_env, "PYTHONPATH": str(ROOT)}
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "cloud_sync.collector", "serve", "--db", f"sqlite:///{db}"]
        cmd += ["--listen", f"127.0.0.1:{port}", "--api-key", "cli-key"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited early:\n{self.proc.stdout.read() if self.proc.stdout else ''}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("collector did not become healthy")

    def stop(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=15)
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def test_serve_in_a_subprocess(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dir" / "collector.db"
    port = free_port()
    batch = gz(batch_dict(gateway="gw7", first=1, last=500))

    first = Collector(db, port, keys_env="env-key=gw7")
    try:
        first.wait_ready()
        r = httpx.post(f"{first.url}/api/v1/batches", content=batch, headers=headers(key="env-key"), timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"batch_id": "gw7:samples:1:500", "accepted": 500, "duplicates": 0, "duplicate_batch": False}
        r = httpx.post(f"{first.url}/api/v1/batches", content=batch, headers=headers(key="nope"), timeout=10)
        assert r.status_code == 401
        code, out = first.stop(signal.SIGTERM)
    finally:
        first.kill()
    assert code == 0, out
    assert f"listening on http://127.0.0.1:{port}" in out
    assert db.is_file()

    # a restarted collector still has the data, and still knows the batch
    second = Collector(db, port, keys_env="")
    try:
        second.wait_ready()
        r = httpx.post(f"{second.url}/api/v1/batches", content=batch, headers=headers(key="cli-key"), timeout=10)
        assert r.json()["duplicate_batch"] is True
        stats = httpx.get(f"{second.url}/api/v1/stats", timeout=10).json()
        assert stats == {"gateways": {"gw7": {"samples": 500, "events": 0, "batches": 1, "duplicate_batches": 1}}}
        code, out = second.stop(signal.SIGINT)
    finally:
        second.kill()
    assert code == 0, out
    assert "Traceback" not in out

    store = SQLiteStore(db)
    try:
        assert store.stats()["gateways"]["gw7"]["samples"] == 500
    finally:
        store.close()
