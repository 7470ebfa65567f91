"""Fixtures of the simulator tests.

Free TCP ports come from :func:`simulators.broker.free_port`.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the project is not necessarily installed
    sys.path.insert(0, str(ROOT))

from simulators.broker import broker_reachable  # noqa: E402


@pytest.fixture
def profile() -> Callable[[str], dict[str, Any]]:
    """Load a shipped device profile (``device_profiles/<name>.toml``) as plain TOML data."""

    def load(name: str) -> dict[str, Any]:
        return tomllib.loads((ROOT / "device_profiles" / f"{name}.toml").read_text(encoding="utf-8"))

    return load


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def mosquitto() -> tuple[str, int]:
    """The local Mosquitto broker; required on CI, skipped elsewhere when it is not running."""
    if broker_reachable("127.0.0.1", 1883):
        return "127.0.0.1", 1883
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("no MQTT broker on 127.0.0.1:1883 (CI needs Mosquitto)")
    pytest.skip("no MQTT broker on 127.0.0.1:1883")
