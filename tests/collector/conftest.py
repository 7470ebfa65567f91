"""Fixtures of the collector tests: every store test and API test runs on SQLite and on PostgreSQL.

PostgreSQL is ``$EDGE_TEST_POSTGRES_URL`` (default the local server's database
``test``). Each test session works in its own uniquely named schemas, dropped at
the end; tests on the shared one start from empty tables. Without a reachable
server the PostgreSQL variants are skipped, except in CI (CI=true), where that
is a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from collector_testkit import KEYS, TABLES, Backend, PgSchemas, PostgresBackend, SQLiteBackend

from cloud_sync.collector.app import create_app
from cloud_sync.collector.store import Store
from tests.conftest import IN_CI, require_service

PG_URL = os.environ.get("EDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[PgSchemas]:
    """Creates schemas for this session on the test server (skip or, in CI, fail when it is not there)."""
    parts = urlsplit(PG_URL)
    require_service("PostgreSQL", parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=5).close()
    except Exception as exc:  # a missing driver or a refused login count as "not there"
        message = f"PostgreSQL at {PG_URL} is not usable: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)
    schemas = PgSchemas(PG_URL)
    try:
        yield schemas
    finally:
        schemas.drop_all()


@pytest.fixture(scope="session")
def pg_shared(pg_schemas: PgSchemas) -> PostgresBackend:
    """One migrated schema the ordinary tests share (emptied before each)."""
    backend = pg_schemas.create()
    backend.open().close()
    return backend


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SQLiteBackend(tmp_path / "collector.db")
    pg: PostgresBackend = request.getfixturevalue("pg_shared")
    pg.execute("; ".join(f"DELETE FROM {table}" for table in TABLES))  # cheaper than TRUNCATE on tiny tables
    return pg


@pytest.fixture
def fresh_backend(request: pytest.FixtureRequest, backend: Backend, tmp_path: Path) -> Backend:
    """A database of the same kind that nothing has touched yet (no tables)."""
    if isinstance(backend, SQLiteBackend):
        return SQLiteBackend(tmp_path / "fresh.db")
    schemas: PgSchemas = request.getfixturevalue("pg_schemas")
    return schemas.create()


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    yield s
    s.close()


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, KEYS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collector") as c:
        yield c
