"""Fixtures of the analytics tests: a database of each dialect with the collector's tables.

PostgreSQL is ``$EDGE_TEST_POSTGRES_URL`` (default: the local server's database
``test``), in a schema of this test session, dropped at the end. Without a
reachable server the PostgreSQL variants are skipped, except in CI (CI=true),
where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from analytics_testkit import PG_URL, Db, PostgresDb, SQLiteDb

from tests.conftest import IN_CI


@pytest.fixture(scope="session")
def pg_db() -> Iterator[PostgresDb]:
    try:
        db = PostgresDb(PG_URL)
    except Exception as exc:  # a missing driver, a refused connection or login all mean "not there"
        message = f"PostgreSQL at {PG_URL} is not usable: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """An empty database of each dialect."""
    if request.param == "sqlite":
        sqlite_db = SQLiteDb(tmp_path / "collector.db")
        yield sqlite_db
        sqlite_db.close()
        return
    pg: PostgresDb = request.getfixturevalue("pg_db")
    pg.clear()
    yield pg
