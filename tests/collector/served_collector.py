"""The collector app served by uvicorn in the test's own event loop (no process start: quick on a busy machine)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

from cloud_sync.collector.app import create_app
from cloud_sync.collector.store import open_store
from tests.conftest import free_port


@contextlib.asynccontextmanager
async def served_collector(db: Path, key: str) -> AsyncIterator[str]:
    """A collector over the SQLite database ``db`` with the in-memory key ``key`` (any gateway); yields its URL."""
    store = open_store(f"sqlite:///{db}")
    port = free_port()
    config = uvicorn.Config(create_app(store, {key: None}), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the collector stopped before it listened")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        store.close()
