"""The shipped units pass systemd's own security review (exposure <= 2.0) where systemd-analyze exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = sorted((Path(__file__).resolve().parents[2] / "systemd").glob("*.service"))


def test_units_exist() -> None:
    assert {u.name for u in UNITS} >= {"edge-agent.service", "edge-collector.service"}


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_exposure_at_most_2(unit: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    out = subprocess.run([tool, "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout + out.stderr)
    assert found, out.stdout + out.stderr
    assert float(found.group(1)) <= 2.0, out.stdout


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_hardening_directives_present(unit: Path) -> None:
    text = unit.read_text()
    for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                      "PrivateDevices=yes", "CapabilityBoundingSet=\n",
                      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
                      "MemoryMax=", "Restart=on-failure", "StateDirectory=", "ConfigurationDirectory="):
        assert directive in text, f"{unit.name}: {directive.strip()} missing"
