"""The embedded backend: one SQLite file, for one collector process.

Durability: the database runs in WAL mode with ``synchronous=NORMAL`` by
default. A committed batch survives a crash of the collector process; after a
power loss or kernel crash the most recent commits may be rolled back (the file
stays consistent). Pass ``synchronous="full"`` (``--synchronous full`` on the
command line) to make every acknowledged batch survive power loss as well, at
the cost of one fsync per batch.

Two connections: one writer (SQLite serialises writers anyway) and one reader,
each guarded by a lock so FastAPI's thread pool can call in freely; with WAL,
queries read a committed snapshot without waiting for an ingest.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from cloud_sync.collector.migrations import CREATE_MIGRATIONS_TABLE, migrations_for, render, unknown_migrations
from cloud_sync.collector.sql_common import UPSERT_DERIVED, UPSERT_DEVICE, UPSERT_TAG, Cursor, SqlStore, render_sql
from cloud_sync.collector.store import StoreError, Synchronous
from cloud_sync.collector.twin import TwinUpdate
from cloud_sync.schema import Batch

log = logging.getLogger("cloud_sync.collector.store")

_INSERT_SAMPLES = (
    "INSERT INTO samples (gateway_id, seq, device, tag, ts, value, quality) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gateway_id, seq) DO NOTHING"
)
_INSERT_EVENTS = (
    "INSERT INTO events (gateway_id, seq, event_id, ts, device, kind, attributes) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gateway_id, seq) DO NOTHING"
)

_UPSERT_TAG = render_sql(UPSERT_TAG, "sqlite")
_UPSERT_DERIVED = render_sql(UPSERT_DERIVED, "sqlite")
_UPSERT_DEVICE = render_sql(UPSERT_DEVICE, "sqlite")


class SQLiteStore(SqlStore):
    """:class:`~cloud_sync.collector.store.Store` on one SQLite file."""

    dialect = "sqlite"

    def __init__(self, path: Path | str, *, synchronous: Synchronous = "normal") -> None:
        if synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', not {synchronous!r}")
        self.path = Path(path)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        try:
            self._writer = self._connect(synchronous)
            mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("%s: journal_mode is %s, not wal (filesystem without shared memory?)", path, mode)
            migrate(self._writer)
            self._reader = self._connect(synchronous)
        except (sqlite3.Error, StoreError) as exc:
            self._close_connections()
            raise StoreError(f"cannot prepare {self.path}: {exc}") from exc

    def _connect(self, synchronous: Synchronous) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
        return conn

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Cursor]:
        lock = self._write_lock if write else self._read_lock
        with lock:
            conn = self._writer if write else self._reader
            if conn is None:
                raise StoreError("store is closed")
            try:
                # IMMEDIATE takes the write lock up front; a plain BEGIN gives reads one snapshot
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn.cursor()
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

    def _insert_rows(self, cur: Cursor, batch: Batch) -> int:
        gw = batch.gateway_id
        assert isinstance(cur, sqlite3.Cursor)
        if batch.stream == "samples":
            cur.executemany(_INSERT_SAMPLES, [(gw, *row) for row in batch.rows])
        else:
            cur.executemany(
                _INSERT_EVENTS,
                [
                    (gw, seq, event_id, ts, device, kind, orjson.dumps(attributes).decode())
                    for seq, event_id, ts, device, kind, attributes in batch.rows
                ],
            )
        return cur.rowcount

    def _upsert_twin(self, cur: Cursor, gateway: str, update: TwinUpdate, now: float) -> None:
        assert isinstance(cur, sqlite3.Cursor)
        if update.tags:
            cur.executemany(_UPSERT_TAG, [(gateway, *row) for row in update.tag_rows()])
        if update.derived:
            cur.executemany(
                _UPSERT_DERIVED,
                [(gateway, d, n, ts, orjson.dumps(v).decode()) for d, n, ts, v in update.derived_rows()],
            )
        cur.executemany(_UPSERT_DEVICE, [(gateway, d, seen, now) for d, seen in update.device_rows()])

    @contextmanager
    def analytics_connection(self, write: bool = False) -> Iterator[tuple[sqlite3.Connection, str]]:
        """A connection for the analytics API: the single writer (under its lock) for posted events,
        else a connection of its own, so long analytics queries never hold up batch ingest (WAL)."""
        if write:
            with self._write_lock:
                if self._writer is None:
                    raise StoreError(f"{self.path}: the store is closed")
                yield self._writer, "sqlite"
            return
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            yield conn, "sqlite"
        finally:
            conn.close()

    def ping(self) -> None:
        """Check that the store is open and the schema readable."""
        with self._transaction(write=False) as cur:
            cur.execute("SELECT COUNT(*) FROM migrations")
            cur.fetchone()

    def close(self) -> None:
        """Close both connections (idempotent); SQLite checkpoints the WAL on the last close."""
        with self._write_lock, self._read_lock:
            self._close_connections()

    def _close_connections(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the missing migrations, each in its own ``BEGIN IMMEDIATE`` transaction.

    Raises :class:`StoreError` when the file has migrations this collector does not know.
    """
    conn.execute(render(CREATE_MIGRATIONS_TABLE, "sqlite"))
    applied = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    if unknown := unknown_migrations(applied):
        raise StoreError(f"database has migrations this collector does not know: {', '.join(unknown)}")
    for name, statements in migrations_for("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # checked inside the transaction: another process may have applied it meanwhile
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("applied migration %s", name)
