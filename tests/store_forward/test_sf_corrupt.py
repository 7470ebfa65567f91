"""Corruption proof: a damaged buffer found at start is moved aside with a clear ERROR and an event, and
the agent runs on a fresh buffer; a buffer written by a newer agent is refused, never moved aside."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent.buffer import Buffer
from edge_agent.model import Sample
from tests.conftest import free_port
from tests.store_forward.sf_procs import Agent, agent_config, wait_for

pytestmark = pytest.mark.e2e


def damaged_buffer(path: Path) -> None:
    buf = Buffer(path)
    buf.append([Sample("d", "t", float(i), float(i)) for i in range(20_000)])
    buf.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    buf.close()
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"\x00\xff" * 6000)


def migrations(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [name for (name,) in conn.execute("SELECT name FROM _migrations ORDER BY name")]


def test_damaged_buffer_is_moved_aside_and_the_agent_runs(tmp_path: Path) -> None:
    buffer = tmp_path / "data" / "buffer.sqlite"
    damaged_buffer(buffer)
    http = free_port()
    # the devices are unreachable: the agent must still start, record events and serve its page
    agent = Agent(tmp_path, agent_config(tmp_path, modbus_port=free_port(), http_port=http, collector_url=None), http)
    try:
        agent.start()
        moved = agent.status()["buffer"]["moved_aside"]
        assert moved and moved["to"].startswith("buffer.sqlite.corrupt-") and moved["problem"]
        assert (buffer.parent / moved["to"]).exists()
        wait_for(lambda: any(kind == "buffer_corrupt" for _, _, kind in agent.rows("events")), 10,
                 "the buffer_corrupt event")
        assert agent.stop() == 0
    finally:
        agent.kill()
    log = agent.log.read_text()
    assert "ERROR" in log and "is damaged" in log and "moved it aside" in log
    with sqlite3.connect(buffer) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_buffer_from_a_newer_agent_is_refused_and_left_alone(tmp_path: Path) -> None:
    buffer = tmp_path / "data" / "buffer.sqlite"
    Buffer(buffer).close()
    with sqlite3.connect(buffer) as conn:
        conn.execute("INSERT INTO _migrations VALUES ('9999_from_the_future', 0)")
    before = migrations(buffer)
    http = free_port()
    agent = Agent(tmp_path, agent_config(tmp_path, modbus_port=free_port(), http_port=http, collector_url=None), http)
    proc = agent.start(wait=False).proc
    assert proc is not None
    assert proc.wait(timeout=30) == 1
    assert "newer version" in agent.log.read_text()
    assert migrations(buffer) == before and not list(buffer.parent.glob("*.corrupt-*"))
