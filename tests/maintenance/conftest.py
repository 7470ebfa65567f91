"""Fixtures for the maintenance tests: the shared reference data (NAB), skipped when absent outside CI."""

from __future__ import annotations

import os

import pytest

from edge_agent.maintenance.datasets import NabCorpus

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def nab() -> NabCorpus:
    """The NAB corpus from the shared reference data (``$EDGE_SHARED_DATA`` or ``../shared/data``)."""
    corpus = NabCorpus.default()
    if not corpus.exists():
        message = f"NAB corpus not found in {corpus.root} (set EDGE_SHARED_DATA)"
        if IN_CI:
            pytest.fail(message + " (CI=true: missing reference data is a failure)")
        pytest.skip(message)
    return corpus
