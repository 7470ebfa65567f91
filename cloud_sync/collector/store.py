"""Where the collector keeps what the gateways send: the backend-neutral interface.

:class:`Store` is what the HTTP layer and the CLI use; :func:`open_store` picks
the implementation from a database URL:

* ``sqlite:///PATH`` -- :class:`~cloud_sync.collector.sqlite_store.SQLiteStore`,
  one embedded file, for one collector process;
* ``postgresql://USER@HOST:PORT/DBNAME`` -- :class:`~cloud_sync.collector.pg_store.PostgresStore`,
  which several collector processes can share (behind a load balancer).

Both use one schema (:mod:`cloud_sync.collector.migrations`) and the same rules.
Exactly-once is enforced by the database, never by process memory:

* ``batches.batch_id`` is unique: a re-sent batch inserts nothing and only
  increments ``gateways.duplicate_batches``;
* rows are unique per ``(gateway_id, seq)`` of their stream: a batch with a new
  id that overlaps rows already stored adds only the new rows;
* the per-gateway counters are updated in SQL in the same transaction as the rows.

The whole ingest of one batch is one transaction; :meth:`Store.ingest` returns
only after it committed.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from cloud_sync.collector.migrations import MIGRATIONS
from cloud_sync.schema import Batch, BatchAck

__all__ = [
    "MIGRATIONS",
    "EventQuery",
    "KeyRecord",
    "NotFound",
    "SampleQuery",
    "Store",
    "StoreError",
    "Synchronous",
    "UnsupportedBackend",
    "display_url",
    "is_postgres_url",
    "open_store",
    "sqlite_path",
]

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
STAT_KEYS = ("samples", "events", "batches", "duplicate_batches")
Synchronous = Literal["normal", "full"]
RowKey = tuple[float, str, int]
"""``(ts, gateway_id, seq)``: the order of rows in queries; ``after`` resumes a query past one (keyset paging)."""


class StoreError(Exception):
    """The store cannot do its job right now (closed, unreachable, disk full, locked, corrupt).

    Callers should treat it as retryable: nothing of the failed call was committed.
    """


class NotFound(LookupError):
    """What was asked for (a gateway, a device) is not stored; the message names it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class UnsupportedBackend(ValueError):
    """A database URL names a backend this collector does not implement."""


@dataclass(frozen=True)
class SampleQuery:
    """Filters of ``GET /api/v1/samples``; ``start`` is inclusive, ``end`` exclusive (epoch seconds)."""

    gateway: str | None = None
    device: str | None = None
    tag: str | None = None
    start: float | None = None
    end: float | None = None
    limit: int = 1000
    after: RowKey | None = None


@dataclass(frozen=True)
class EventQuery:
    """Filters of ``GET /api/v1/events``; ``start`` is inclusive, ``end`` exclusive (epoch seconds)."""

    gateway: str | None = None
    device: str | None = None
    kind: str | None = None
    start: float | None = None
    end: float | None = None
    limit: int = 1000
    after: RowKey | None = None


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: never the secret, only its salted digest (see :mod:`.keys`)."""

    key_id: str
    gateway_id: str
    salt: str
    digest: str
    note: str
    created_at: float
    revoked_at: float | None = None


@runtime_checkable
class Store(Protocol):
    """What the HTTP layer and the CLI need from storage."""

    def ingest(self, batch: Batch) -> BatchAck:
        """Store one validated batch in one transaction; return after it committed."""
        ...

    def stats(self) -> dict[str, Any]:
        """``{"gateways": {id: {"samples", "events", "batches", "duplicate_batches"}}}``."""
        ...

    def gateways(self) -> list[dict[str, Any]]:
        """One entry per gateway: last seen, backlog it reported, its last batch, counters."""
        ...

    def samples(self, query: SampleQuery) -> list[dict[str, Any]]:
        """Samples matching ``query``, ordered by ``(ts, gateway_id, seq)``, at most ``query.limit``."""
        ...

    def events(self, query: EventQuery) -> list[dict[str, Any]]:
        """Events matching ``query``, ordered by ``(ts, gateway_id, seq)``, at most ``query.limit``."""
        ...

    def device_twin(self, gateway: str, device: str) -> dict[str, Any]:
        """The latest twin of one device; raises :class:`NotFound` for an unknown gateway or device."""
        ...

    def devices(self, gateway: str) -> list[dict[str, Any]]:
        """The devices of one gateway with their state and last seen; :class:`NotFound` if unknown."""
        ...

    def add_key(self, record: KeyRecord) -> None:
        """Store a new API key record."""
        ...

    def get_key(self, key_id: str) -> KeyRecord | None:
        """The key record with ``key_id``, revoked or not, or ``None``."""
        ...

    def list_keys(self) -> list[KeyRecord]:
        """Every key record, oldest first."""
        ...

    def revoke_key(self, key_id: str, at: float) -> KeyRecord | None:
        """Mark a key revoked (once; a second revoke keeps the first time); ``None`` if unknown."""
        ...

    def analytics_connection(self, write: bool = False) -> AbstractContextManager[tuple[Any, str]]:
        """A DB-API connection and its dialect ("sqlite" or "postgresql") for the analytics API."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreError` if the store cannot serve requests."""
        ...

    def close(self) -> None:
        """Release the backend; later calls raise :class:`StoreError`."""
        ...


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return url.split("://", 1)[0].lower() in POSTGRES_SCHEMES


def sqlite_path(url: str) -> Path:
    """The file named by a ``sqlite:///PATH`` URL (``sqlite:////abs/path`` is absolute).

    Raises :class:`UnsupportedBackend` for other schemes, with a message fit for users.
    """
    if not url.startswith(SQLITE_PREFIX):
        raise UnsupportedBackend(
            f"unsupported database URL {url!r}; expected sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME"
        )
    path = url[len(SQLITE_PREFIX) :]
    if not path or path == ":memory:":
        raise UnsupportedBackend(f"database URL {url!r} must name a file: sqlite:///PATH")
    return Path(path)


def display_url(url: str) -> str:
    """``url`` fit for logs: a password in it is replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def open_store(url: str, *, synchronous: Synchronous = "normal", pool_size: int = 8) -> Store:
    """Open (and migrate) the store named by a database URL.

    ``synchronous`` applies to SQLite (whose file's parent directories are
    created), ``pool_size`` to PostgreSQL. Raises :class:`UnsupportedBackend`
    for a URL of another kind and :class:`StoreError` when the database cannot
    be opened or migrated.
    """
    if is_postgres_url(url):
        try:
            from cloud_sync.collector.pg_store import PostgresStore
        except ImportError as exc:
            raise UnsupportedBackend(
                f"PostgreSQL needs psycopg ({exc.name} is missing): pip install 'edge-gateway-agent[postgres]'"
            ) from None
        return PostgresStore(url, pool_size=pool_size)
    from cloud_sync.collector.sqlite_store import SQLiteStore

    path = sqlite_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path.parent}: {exc}") from exc
    return SQLiteStore(path, synchronous=synchronous)
