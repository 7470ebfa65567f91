"""The scale-out backend: PostgreSQL, shared by any number of collector processes.

``postgresql://USER@HOST:PORT/DBNAME`` (libpq URL; ``?options=-csearch_path%3DSCHEMA``
selects a schema). Nothing that matters lives in process memory: duplicates are
rejected by unique keys, counters are updated in SQL, and migrations run under
an advisory lock, so collectors behind a load balancer can start and ingest
together.

Rows are bulk loaded with ``COPY``: straight into the table when none of the
batch's sequence range is stored yet (the common case), otherwise into a
per-connection temporary table and from there with ``INSERT ... SELECT ... ON
CONFLICT DO NOTHING``. Should another process store some of the same rows between
the check and the ``COPY``, the unique key fails the ``COPY``, which is rolled
back to a savepoint and redone the second way. Rows are inserted in ``seq`` order,
so two transactions never wait for each other's rows in opposite orders; a
deadlock or serialization failure would still be retried
(:data:`~cloud_sync.collector.sql_common.INGEST_ATTEMPTS`).

Connections come from a :class:`psycopg_pool.ConnectionPool`, checked before use,
so the collector recovers by itself from a database restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool

from cloud_sync.collector.migrations import CREATE_MIGRATIONS_TABLE, migrations_for, render, unknown_migrations
from cloud_sync.collector.sql_common import Cursor, RetryableStoreError, SqlStore
from cloud_sync.collector.store import StoreError, display_url
from cloud_sync.collector.twin import TwinUpdate
from cloud_sync.schema import Batch

log = logging.getLogger("cloud_sync.collector.store")

CONNECT_TIMEOUT_S = 10
_LOCK_KEY = "hashtextextended('edge-collector migrations ' || current_schema(), 0)"


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@dataclass(frozen=True)
class _RowSpec:
    """How one stream's rows are copied: table, columns after ``gateway_id``, temporary table."""

    table: str
    columns: tuple[str, ...]
    temp_ddl: str
    convert: Callable[[list[Any]], tuple[Any, ...]]

    @property
    def temp(self) -> str:
        return f"ingest_{self.table}"


_SAMPLES = _RowSpec(
    table="samples",
    columns=("seq", "device", "tag", "ts", "value", "quality"),
    temp_ddl="seq BIGINT, device TEXT, tag TEXT, ts DOUBLE PRECISION, value JSONB, quality BIGINT",
    convert=lambda r: (r[0], r[1], r[2], r[3], _json(r[4]), r[5]),
)
_EVENTS = _RowSpec(
    table="events",
    columns=("seq", "event_id", "ts", "device", "kind", "attributes"),
    temp_ddl="seq BIGINT, event_id TEXT, ts DOUBLE PRECISION, device TEXT, kind TEXT, attributes JSONB",
    convert=lambda r: (r[0], r[1], r[2], r[3], r[4], orjson.dumps(r[5]).decode()),
)

_UPSERT_TAGS = (
    "INSERT INTO device_twin_tags (gateway_id, device, tag, ts, value, quality) "
    "SELECT %s, u.d, u.t, u.ts, u.v::jsonb, u.q "
    "FROM unnest(%s::text[], %s::text[], %s::float8[], %s::text[], %s::int8[]) AS u(d, t, ts, v, q) "
    "ON CONFLICT (gateway_id, device, tag) DO UPDATE SET "
    "ts = excluded.ts, value = excluded.value, quality = excluded.quality WHERE excluded.ts >= device_twin_tags.ts"
)
_UPSERT_DERIVED = (
    "INSERT INTO device_twin_derived (gateway_id, device, name, ts, value) "
    "SELECT %s, u.d, u.n, u.ts, u.v::jsonb "
    "FROM unnest(%s::text[], %s::text[], %s::float8[], %s::text[]) AS u(d, n, ts, v) "
    "ON CONFLICT (gateway_id, device, name) DO UPDATE SET "
    "ts = excluded.ts, value = excluded.value WHERE excluded.ts >= device_twin_derived.ts"
)
_UPSERT_DEVICES = (
    "INSERT INTO device_twins (gateway_id, device, last_seen, updated_at) "
    "SELECT %s, u.d, u.seen, %s FROM unnest(%s::text[], %s::float8[]) AS u(d, seen) "
    "ON CONFLICT (gateway_id, device) DO UPDATE SET "
    "last_seen = GREATEST(device_twins.last_seen, excluded.last_seen), updated_at = excluded.updated_at"
)


class PostgresStore(SqlStore):
    """:class:`~cloud_sync.collector.store.Store` on a PostgreSQL database (migrated on open)."""

    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self._closed = False
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                migrate(conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot prepare {display_url(url)}: {exc}") from exc
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=_configure,
            check=ConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT_S,
            name="edge-collector",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            self._pool.close()
            raise StoreError(f"cannot connect to {display_url(url)}: {exc}") from exc

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Cursor]:
        if self._closed:
            raise StoreError("store is closed")
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
            raise RetryableStoreError(f"{type(exc).__name__}: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"{display_url(self.url)}: {type(exc).__name__}: {exc}") from exc

    def _insert_rows(self, cur: Cursor, batch: Batch) -> int:
        assert isinstance(cur, psycopg.Cursor)
        spec = _SAMPLES if batch.stream == "samples" else _EVENTS
        gw = batch.gateway_id
        if not self._range_stored(cur, spec.table, batch):
            try:
                with cur.connection.transaction():  # a savepoint
                    _copy(cur, spec.table, ("gateway_id", *spec.columns), ((gw, *spec.convert(r)) for r in batch.rows))
                return len(batch.rows)
            except pg_errors.UniqueViolation:
                log.debug("%s: rows stored concurrently; inserting the rest", batch.batch_id)
        _copy(cur, spec.temp, spec.columns, (spec.convert(r) for r in batch.rows))
        columns = ", ".join(spec.columns)
        cur.execute(
            f"INSERT INTO {spec.table} (gateway_id, {columns}) SELECT %s, {columns} FROM {spec.temp} "
            "ORDER BY seq ON CONFLICT (gateway_id, seq) DO NOTHING",
            (gw,),
        )
        return cur.rowcount

    def _upsert_twin(self, cur: Cursor, gateway: str, update: TwinUpdate, now: float) -> None:
        """One ``INSERT ... SELECT FROM unnest(...)`` per twin table, rows in key order (a fixed lock order)."""
        if update.tags:
            rows = update.tag_rows()
            cur.execute(
                _UPSERT_TAGS,
                (
                    gateway,
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    [float(r[2]) for r in rows],
                    [_json(r[3]) for r in rows],
                    [r[4] for r in rows],
                ),
            )
        if update.derived:
            derived = update.derived_rows()
            cur.execute(
                _UPSERT_DERIVED,
                (
                    gateway,
                    [r[0] for r in derived],
                    [r[1] for r in derived],
                    [float(r[2]) for r in derived],
                    [orjson.dumps(r[3]).decode() for r in derived],
                ),
            )
        devices = update.device_rows()
        cur.execute(_UPSERT_DEVICES, (gateway, now, [d for d, _ in devices], [float(seen) for _, seen in devices]))

    def _range_stored(self, cur: psycopg.Cursor[Any], table: str, batch: Batch) -> bool:
        """Whether any row of the batch's sequence range is already stored (committed)."""
        cur.execute(
            f"SELECT 1 FROM {table} WHERE gateway_id = %s AND seq BETWEEN %s AND %s LIMIT 1",
            (batch.gateway_id, batch.first_seq, batch.last_seq),
        )
        return cur.fetchone() is not None

    @contextmanager
    def analytics_connection(self, write: bool = False) -> Iterator[tuple[Any, str]]:
        """A pooled connection for the analytics API (committed when the block ends without error)."""
        try:
            with self._pool.connection() as conn:
                yield conn, "postgresql"
        except psycopg.OperationalError as exc:
            raise StoreError(f"PostgreSQL unavailable: {exc}") from exc

    def ping(self) -> None:
        """Check that a connection can be had and the schema read."""
        with self._transaction(write=False) as cur:
            cur.execute("SELECT 1 FROM migrations LIMIT 1")
            cur.fetchone()

    def close(self) -> None:
        """Close the pool (idempotent)."""
        if not self._closed:
            self._closed = True
            self._pool.close()


def _copy(cur: psycopg.Cursor[Any], table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Prepare a pooled connection: fast JSON decoding and the temporary tables of the slow insert path."""
    set_json_loads(orjson.loads, conn)
    for spec in (_SAMPLES, _EVENTS):
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {spec.temp} ({spec.temp_ddl}) ON COMMIT DELETE ROWS")


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Apply the missing migrations on an autocommit connection, each in its own transaction.

    A session advisory lock (per schema) is held meanwhile, so collectors
    starting together apply each migration once. Raises :class:`StoreError`
    when no schema is selected or the database has migrations this collector
    does not know.
    """
    schema = conn.execute("SELECT current_schema()").fetchone()
    if schema is None or schema[0] is None:
        raise StoreError("no schema to create tables in: the search_path names no existing schema")
    conn.execute(f"SELECT pg_advisory_lock({_LOCK_KEY})")
    try:
        conn.execute(render(CREATE_MIGRATIONS_TABLE, "postgresql"))
        applied = {row[0] for row in conn.execute("SELECT name FROM migrations")}
        if unknown := unknown_migrations(applied):
            raise StoreError(f"database has migrations this collector does not know: {', '.join(unknown)}")
        for name, statements in migrations_for("postgresql"):
            if name in applied:
                continue
            with conn.transaction():
                for sql in statements:
                    conn.execute(sql)
                conn.execute("INSERT INTO migrations (name, applied_at) VALUES (%s, %s)", (name, time.time()))
            log.info("applied migration %s to schema %s", name, schema[0])
    finally:
        conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
