"""The public API of both analytics packages: every name in ``__all__`` exists, and the packages import cleanly."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import cloud_sync.analytics
import edge_agent.behaviour

MODULES = [
    name
    for package in (edge_agent.behaviour, cloud_sync.analytics)
    for name in [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert sorted(exported) == sorted(set(exported)), f"{name}: duplicates in __all__"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but not defined"
    assert module.__doc__, f"{name} has no docstring"


def test_edge_side_does_not_import_the_collector() -> None:
    for name in MODULES:
        if name.startswith("edge_agent."):
            source = importlib.import_module(name).__file__
            assert source is not None
            with open(source) as f:
                assert "cloud_sync" not in f.read(), name
