"""Helpers to run the whole agent in-process against real servers."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from edge_agent.config import load_config
from edge_agent.supervisor import Agent


def write_config(tmp_path: Path, body: str, *, http_port: int, collector: str | None = None) -> Path:
    head = f"""
    gateway_id = "test-gw"
    data_dir = "data"
    [http]
    listen = "127.0.0.1:{http_port}"
    """
    if collector:
        head += f"""
    [collector]
    url = "{collector}"
    api_key = "test-key"
    batch_size = 500
    interval_s = 0.3
    backoff_max_s = 1.0
    """
    path = tmp_path / "agent.toml"
    path.write_text(textwrap.dedent(head) + textwrap.dedent(body))
    return path


@contextlib.asynccontextmanager
async def running_agent(path: Path, http: bool = True) -> AsyncIterator[Agent]:
    agent = Agent(load_config(path))
    task = asyncio.create_task(agent.run(http=http))
    ready = asyncio.create_task(agent.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()
    assert ready in done, "agent did not become ready"
    try:
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(task, timeout=30)


async def eventually(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def cnc_device(port: int, name: str = "cnc-1", poll_interval_s: float = 0.1, unit_id: int = 1) -> str:
    """A ``[[devices]]`` entry (TOML) for a simulated CNC on the Modbus server at ``port``."""
    return f"""
    [[devices]]
    name = "{name}"
    profile = "cnc_vmc"
    [devices.connection]
    host = "127.0.0.1"
    port = {port}
    unit_id = {unit_id}
    poll_interval_s = {poll_interval_s}
    """
