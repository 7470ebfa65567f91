"""Status page tests: the ``browser`` marker and the Chromium they drive."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import IN_CI


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the status page in headless Chromium (playwright)")


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def chromium_or_skip() -> str:
    """Path of the system Chromium; in CI (CI=true) a missing browser or playwright fails the test."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    problem = None
    if path is None:
        problem = "chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem is not None:
        if IN_CI:
            pytest.fail(problem + " (CI=true: a missing browser is a failure)")
        pytest.skip(problem)
    assert path is not None
    return path
