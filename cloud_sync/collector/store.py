"""Where the collector keeps what the gateways send.

One small, backend-neutral interface (:class:`Store`) and an embedded SQLite
implementation (:class:`SQLiteStore`). A PostgreSQL implementation can come
later behind the same interface; the SQL here stays plain (``INSERT ... ON
CONFLICT DO NOTHING``, upserts, ``GROUP BY`` counts) so it ports directly.

Exactly-once is enforced by the database, never by process memory:

* ``batches.batch_id`` is unique: a re-sent batch inserts nothing and only
  increments ``gateways.duplicate_batches``;
* rows are unique per ``(gateway_id, seq)`` of their stream: a batch with a new
  id that overlaps rows already stored adds only the new rows.

The whole ingest of one batch is one transaction; :meth:`Store.ingest` returns
only after it committed.

Durability: the database runs in WAL mode with ``synchronous=NORMAL`` by
default. A committed batch survives a crash of the collector process; after a
power loss or kernel crash the most recent commits may be rolled back (the file
stays consistent). Pass ``synchronous="full"`` (``--synchronous full`` on the
command line) to make every acknowledged batch survive power loss as well, at
the cost of one fsync per batch.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import orjson

from cloud_sync.schema import Batch, BatchAck

log = logging.getLogger(__name__)

SQLITE_PREFIX = "sqlite:///"
_STAT_KEYS = ("samples", "events", "batches", "duplicate_batches")
Synchronous = Literal["normal", "full"]


class StoreError(Exception):
    """The store cannot do its job right now (closed, disk full, locked, corrupt).

    Callers should treat it as retryable: nothing of the failed call was committed.
    """


class UnsupportedBackend(ValueError):
    """A database URL names a backend this collector does not implement."""


@runtime_checkable
class Store(Protocol):
    """What the HTTP layer needs from storage."""

    def ingest(self, batch: Batch) -> BatchAck:
        """Store one validated batch in one transaction; return after it committed."""
        ...

    def stats(self) -> dict[str, Any]:
        """``{"gateways": {id: {"samples", "events", "batches", "duplicate_batches"}}}``."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreError` if the store cannot serve requests."""
        ...

    def close(self) -> None:
        """Release the backend; later calls raise :class:`StoreError`."""
        ...


# Named migrations, applied in order, each in its own transaction, and recorded
# in the ``migrations`` table. Never edit or reorder an applied migration: add one.
MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "0001_initial",
        (
            """CREATE TABLE batches (
                batch_id TEXT NOT NULL UNIQUE,
                gateway_id TEXT NOT NULL,
                stream TEXT NOT NULL,
                first_seq INTEGER NOT NULL,
                last_seq INTEGER NOT NULL,
                "rows" INTEGER NOT NULL,
                received_at REAL NOT NULL
            )""",
            "CREATE INDEX batches_gateway ON batches (gateway_id)",
            # ``value`` has no declared type, so SQLite keeps each value's own type
            # (integer, real, text; booleans arrive as 0/1, null stays null).
            # The primary key is the (gateway_id, seq) uniqueness; WITHOUT ROWID keeps
            # it as the only b-tree, which is roughly 1.5x faster to fill.
            """CREATE TABLE samples (
                gateway_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                device TEXT NOT NULL,
                tag TEXT NOT NULL,
                ts REAL NOT NULL,
                value,
                quality INTEGER NOT NULL,
                PRIMARY KEY (gateway_id, seq)
            ) WITHOUT ROWID""",
            """CREATE TABLE events (
                gateway_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                event_id TEXT NOT NULL,
                ts REAL NOT NULL,
                device TEXT NOT NULL,
                kind TEXT NOT NULL,
                attributes TEXT NOT NULL,
                PRIMARY KEY (gateway_id, seq)
            ) WITHOUT ROWID""",
            """CREATE TABLE gateways (
                gateway_id TEXT PRIMARY KEY,
                first_seen REAL NOT NULL,
                last_seen REAL NOT NULL,
                last_batch_id TEXT,
                backlog TEXT NOT NULL DEFAULT '{}',
                duplicate_batches INTEGER NOT NULL DEFAULT 0
            )""",
        ),
    ),
)

_INSERT_BATCH = (
    'INSERT INTO batches (batch_id, gateway_id, stream, first_seq, last_seq, "rows", received_at) '
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id) DO NOTHING"
)
_INSERT_SAMPLES = (
    "INSERT INTO samples (gateway_id, seq, device, tag, ts, value, quality) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gateway_id, seq) DO NOTHING"
)
_INSERT_EVENTS = (
    "INSERT INTO events (gateway_id, seq, event_id, ts, device, kind, attributes) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gateway_id, seq) DO NOTHING"
)
_UPSERT_GATEWAY = (
    "INSERT INTO gateways (gateway_id, first_seen, last_seen, last_batch_id, backlog, duplicate_batches) "
    "VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (gateway_id) DO UPDATE SET "
    "last_seen = excluded.last_seen, last_batch_id = excluded.last_batch_id, backlog = excluded.backlog"
)
_COUNT_DUPLICATE = (
    "INSERT INTO gateways (gateway_id, first_seen, last_seen, last_batch_id, backlog, duplicate_batches) "
    "VALUES (?, ?, ?, NULL, ?, 1) ON CONFLICT (gateway_id) DO UPDATE SET "
    "last_seen = excluded.last_seen, backlog = excluded.backlog, "
    "duplicate_batches = gateways.duplicate_batches + 1"
)


def sqlite_path(url: str) -> Path:
    """The file named by a ``sqlite:///PATH`` URL (``sqlite:////abs/path`` is absolute).

    Raises :class:`UnsupportedBackend` for other schemes, with a message fit for users.
    """
    if url.startswith(("postgresql://", "postgres://", "postgresql+")):
        raise UnsupportedBackend("PostgreSQL is not supported yet; use --db sqlite:///PATH")
    if not url.startswith(SQLITE_PREFIX):
        raise UnsupportedBackend(f"unsupported database URL {url!r}; expected sqlite:///PATH")
    path = url[len(SQLITE_PREFIX) :]
    if not path or path == ":memory:":
        raise UnsupportedBackend(f"database URL {url!r} must name a file: sqlite:///PATH")
    return Path(path)


def open_store(url: str, *, synchronous: Synchronous = "normal") -> Store:
    """Open the store named by a database URL, creating the file's parent directories."""
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(path, synchronous=synchronous)


class SQLiteStore:
    """:class:`Store` on one SQLite file.

    One connection is shared by all threads and guarded by a lock, so FastAPI's
    thread pool can call in freely; SQLite serialises writers anyway.
    """

    def __init__(self, path: Path | str, *, synchronous: Synchronous = "normal") -> None:
        if synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', not {synchronous!r}")
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self._conn: sqlite3.Connection | None = conn
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("%s: journal_mode is %s, not wal (filesystem without shared memory?)", path, mode)
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
            self._migrate(conn)
        except (sqlite3.Error, StoreError) as exc:
            conn.close()
            self._conn = None
            raise StoreError(f"cannot prepare {self.path}: {exc}") from exc

    # -- schema ---------------------------------------------------------------

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        known = {name for name, _ in MIGRATIONS}
        applied = {row[0] for row in conn.execute("SELECT name FROM migrations")}
        if unknown := sorted(applied - known):
            raise StoreError(f"database has migrations this collector does not know: {', '.join(unknown)}")
        for name, statements in MIGRATIONS:
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

    # -- Store ------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("store is closed")
        return self._conn

    def ingest(self, batch: Batch) -> BatchAck:
        """Store ``batch`` in one transaction (see the module docstring for the rules).

        The rows must already have the column types of the schema (the HTTP layer
        checks them); a row SQLite cannot bind fails the whole batch with
        :class:`StoreError` and nothing is committed.
        """
        now = time.time()
        backlog = orjson.dumps(batch.backlog).decode()
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    ack = self._ingest(conn, batch, now, backlog)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"ingest of {batch.batch_id} failed: {exc}") from exc
        return ack

    @staticmethod
    def _ingest(conn: sqlite3.Connection, batch: Batch, now: float, backlog: str) -> BatchAck:
        gw = batch.gateway_id
        total = len(batch.rows)
        new_batch = conn.execute(
            _INSERT_BATCH,
            (batch.batch_id, gw, batch.stream, batch.first_seq, batch.last_seq, total, now),
        ).rowcount
        if new_batch == 0:
            conn.execute(_COUNT_DUPLICATE, (gw, now, now, backlog))
            return BatchAck(batch_id=batch.batch_id, accepted=0, duplicates=total, duplicate_batch=True)
        accepted = _insert_rows(conn, gw, batch.stream, batch.rows) if total else 0
        conn.execute(_UPSERT_GATEWAY, (gw, now, now, batch.batch_id, backlog))
        return BatchAck(batch_id=batch.batch_id, accepted=accepted, duplicates=total - accepted, duplicate_batch=False)

    def stats(self) -> dict[str, Any]:
        """Per-gateway counts, all taken from the tables."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN")  # one consistent snapshot for all counts
                try:
                    gateways: dict[str, dict[str, int]] = {}
                    for gw, dup in conn.execute("SELECT gateway_id, duplicate_batches FROM gateways"):
                        gateways[gw] = {"samples": 0, "events": 0, "batches": 0, "duplicate_batches": dup}
                    for table in ("samples", "events", "batches"):
                        sql = f"SELECT gateway_id, COUNT(*) FROM {table} GROUP BY gateway_id"
                        for gw, count in conn.execute(sql):
                            counts = gateways.setdefault(gw, dict.fromkeys(_STAT_KEYS, 0))
                            counts[table] = count
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"stats failed: {exc}") from exc
        return {"gateways": gateways}

    def ping(self) -> None:
        """Check that the connection is open and the schema readable."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("SELECT COUNT(*) FROM migrations").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"database not usable: {exc}") from exc

    def close(self) -> None:
        """Close the connection (idempotent); the WAL is checkpointed by SQLite on close."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _insert_rows(conn: sqlite3.Connection, gateway_id: str, stream: str, rows: Sequence[Sequence[Any]]) -> int:
    """Insert the rows of one batch, skipping those already stored; return how many were new."""
    if stream == "samples":
        cur = conn.executemany(_INSERT_SAMPLES, [(gateway_id, *row) for row in rows])
    else:
        cur = conn.executemany(
            _INSERT_EVENTS,
            [
                (gateway_id, seq, event_id, ts, device, kind, orjson.dumps(attributes).decode())
                for seq, event_id, ts, device, kind, attributes in rows
            ],
        )
    return cur.rowcount
