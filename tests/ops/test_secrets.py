"""Secrets come from the environment, files or systemd credentials, and never show in logs or the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from edge_agent.cli import main
from edge_agent.config import load_config
from edge_agent.errors import ConfigError
from tests.conftest import free_port, service_up

API_KEY = "k3y-THAT-must-never-leak-4711"
MQTT_PASSWORD = "pa55-THAT-must-never-leak-0815"


def write(tmp_path: Path, api_key: str, password: str, http: int = 8080, broker: str = "mqtt://127.0.0.1:1883",
          collector: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(textwrap.dedent(f"""
        gateway_id = "secret-gw"
        data_dir = "data"
        [http]
        listen = "127.0.0.1:{http}"
        [collector]
        url = "{collector}"
        api_key = "{api_key}"
        interval_s = 0.2
        [[devices]]
        name = "vib-s"
        profile = "vibration_sensor"
        [devices.connection]
        broker = "{broker}"
        username = "gateway"
        password = "{password}"
    """))
    path.chmod(0o600)
    return path


def test_references_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt.pass").write_text(MQTT_PASSWORD + "\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api-key").write_text(API_KEY)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = load_config(write(tmp_path, "credential:api-key", "file:mqtt.pass"))
    assert config.collector is not None and config.collector.api_key == API_KEY
    assert config.devices[0].connection.password == MQTT_PASSWORD  # type: ignore[union-attr]
    assert config.warnings == ()
    monkeypatch.setenv("EDGE_TEST_KEY", API_KEY)
    assert load_config(write(tmp_path, "env:EDGE_TEST_KEY", "file:mqtt.pass")).collector.api_key == API_KEY  # type: ignore[union-attr]


def test_missing_secret_is_a_config_error_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_MISSING", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = write(tmp_path, "env:EDGE_MISSING", "credential:mqtt")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0] == f"{path}:16: devices[0].connection.password: no systemd credentials here " \
        "(CREDENTIALS_DIRECTORY is not set); add LoadCredential=mqtt:/etc/edge-agent/mqtt to the unit"
    assert info.value.problems[1] == f"{path}:8: collector.api_key: environment variable EDGE_MISSING is not set"


def test_literal_secret_in_a_world_readable_file_is_reported(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, API_KEY, MQTT_PASSWORD)
    assert load_config(path).warnings == ()
    path.chmod(0o644)
    assert main(["check", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    assert "devices[0].connection.password, collector.api_key written in a file other users can read" in captured.err
    assert API_KEY not in captured.out + captured.err and MQTT_PASSWORD not in captured.out + captured.err


def test_secrets_never_in_logs_status_or_metrics(tmp_path: Path, mosquitto: str) -> None:
    http = free_port()
    env = {**os.environ, "EDGE_TEST_KEY": API_KEY}
    (tmp_path / "mqtt.pass").write_text(MQTT_PASSWORD)
    # a collector that is down: the sync failure is logged with its URL, never with the key
    path = write(tmp_path, "env:EDGE_TEST_KEY", "file:mqtt.pass", http=http, broker=mosquitto,
                 collector=f"http://127.0.0.1:{free_port()}")
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config", str(path), "--log-level", "debug",
                             "--log-format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        deadline = time.monotonic() + 20
        while not service_up("127.0.0.1", http):
            assert proc.poll() is None and time.monotonic() < deadline, "agent did not start"
            time.sleep(0.1)
        time.sleep(1.5)
        pages = [httpx.get(f"http://127.0.0.1:{http}{p}", timeout=5).text
                 for p in ("/api/v1/status", "/metrics", "/api/v1/devices/vib-s")]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    records = [json.loads(line) for line in out.splitlines() if line.strip()]  # --log-format json: every line
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    assert any(r["message"].startswith("sync failed") for r in records)  # the log did cover the failing paths
    for text in [out, *pages]:
        assert API_KEY not in text and MQTT_PASSWORD not in text
