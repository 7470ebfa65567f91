"""Fixtures of the simulator tests.

Free TCP ports come from :func:`simulators.broker.free_port`; the ``mosquitto``
fixture (a broker URL; skipped, or failed when CI=true, without a broker)
comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def profile() -> Callable[[str], dict[str, Any]]:
    """Load a shipped device profile (``device_profiles/<name>.toml``) as plain TOML data."""

    def load(name: str) -> dict[str, Any]:
        return tomllib.loads((ROOT / "device_profiles" / f"{name}.toml").read_text(encoding="utf-8"))

    return load


@pytest.fixture
def project_root() -> Path:
    return ROOT
