"""`edge-agent demo --duration S`: the README's demo, run as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def run_demo(tmp_path: Path, *extra: str) -> tuple[int, dict[str, object], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "demo", "--duration", "12", "--data-dir", str(tmp_path / "demo"),
         *extra],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    summary = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, summary, proc.stderr


def test_demo_with_embedded_broker_delivers_every_device(tmp_path: Path) -> None:
    code, summary, err = run_demo(tmp_path, "--broker", "embedded")
    assert code == 0, err[-3000:]
    assert summary["ok"] is True
    devices = summary["devices"]
    assert isinstance(devices, dict)
    assert set(devices) == {"cnc-1", "cnc-2", "pack-1", "vib-1", "vib-2", "vibw-1"}
    assert {d["protocol"] for d in devices.values()} == {"modbus", "opcua", "mqtt"}
    assert all(d["samples"] > 0 for d in devices.values())
    stored, received = summary["samples_stored"], summary["samples_received"]
    assert isinstance(stored, int) and isinstance(received, int)
    assert stored > 0 and received == stored  # the final sync on stop delivers everything
    assert summary["duplicate_batches"] == 0
    assert "status page: http://127.0.0.1:" in err
    # the simulated MES posted the plant's part flow to the collector, and the operator logged in
    assert re.search(r"fleet page: +http://127.0.0.1:\d+/#key=", err), err[-2000:]
    mes, operator = summary["mes"], summary["operator"]
    assert isinstance(mes, dict) and isinstance(operator, dict)
    assert mes["accepted"] > 1000 and mes["rejected"] == 0 and mes["failed_posts"] == 0
    assert operator["logins"] >= 1 and operator["errors"] == 0


def test_demo_refuses_a_broken_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO / "examples" / "plant.toml").read_text().replace("unit_id = 2", "unit_id = 300"))
    code, _, err = run_demo(tmp_path, "--config", str(bad))
    assert code == 2
    assert f"{bad}:" in err and "devices[1].connection.unit_id: must be <= 255, got 300" in err
