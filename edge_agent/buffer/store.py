"""SQLite store-and-forward buffer.

Samples and events are appended in batches, each batch one transaction, and get
a per-stream monotonically increasing sequence number (``seq``, AUTOINCREMENT, so
never reused). The uploader reads rows above the stream's acknowledged ``seq`` and
moves that mark forward only after the collector answered 2xx.

Bounded: at most ``max_rows`` samples. When a new batch would pass the cap,
synced rows are pruned first; if unsynced rows still fill it, the overflow policy
applies: ``drop_oldest`` deletes the oldest unsynced samples, ``drop_newest``
refuses the incoming ones. Events are never dropped. Every drop is counted in
the ``counters`` table (persistent) and reported by :meth:`Buffer.stats`.

The file is in WAL mode; with ``synchronous=NORMAL`` a committed batch survives a
crash or ``kill -9`` of the agent (``FULL`` also survives power loss).

All methods are blocking and must be called from one thread at a time (the
supervisor runs them on a dedicated single-thread executor).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from edge_agent.buffer.migrations import migrate
from edge_agent.errors import StoreError
from edge_agent.model import Event, Sample

STREAMS = ("samples", "events")


@dataclass
class BufferStats:
    samples_rows: int
    events_rows: int
    unsynced: dict[str, int]
    acked_seq: dict[str, int]
    last_seq: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)
    file_bytes: int = 0
    max_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class AppendResult:
    samples: int
    events: int
    dropped_oldest: int = 0
    dropped_newest: int = 0


class Buffer:
    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = 5_000_000,
        on_full: str = "drop_oldest",
        synchronous: str = "normal",
    ) -> None:
        self.path = path
        self.max_rows = max_rows
        self.on_full = on_full
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self.conn.execute("PRAGMA busy_timeout=5000")
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open buffer: {exc}") from exc
        self.db = sqlite_utils.Database(self.conn)
        self._samples_rows = self._count("samples")
        self._events_rows = self._count("events")
        self._acked = {s: self._acked_seq(s) for s in STREAMS}

    # -- writing -------------------------------------------------------------------------

    def append(self, samples: Sequence[Sample], events: Sequence[Event] = ()) -> AppendResult:
        """Commit samples and events in one transaction (or raise StoreError, committing nothing)."""
        result = AppendResult(samples=len(samples), events=len(events))
        rows = [(s.device, s.tag, s.ts, _db_value(s.value), int(s.quality)) for s in samples]
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                overflow = self._samples_rows + len(rows) - self.max_rows
                if overflow > 0:
                    overflow -= self._prune_synced(overflow)
                if overflow > 0:
                    if self.on_full == "drop_newest":
                        keep = max(0, len(rows) - overflow)
                        result.dropped_newest = len(rows) - keep
                        rows = rows[:keep]
                        result.samples = keep
                    else:
                        result.dropped_oldest = self._drop_oldest(overflow)
                if rows:
                    self.conn.executemany(
                        "INSERT INTO samples (device, tag, ts, value, quality) VALUES (?, ?, ?, ?, ?)", rows
                    )
                if events:
                    self.conn.executemany(
                        "INSERT OR IGNORE INTO events (id, ts, device, kind, attributes) VALUES (?, ?, ?, ?, ?)",
                        [(e.id, e.ts, e.device, e.kind, orjson.dumps(e.attributes).decode()) for e in events],
                    )
                for name, value in (
                    ("dropped_oldest", result.dropped_oldest),
                    ("dropped_newest", result.dropped_newest),
                ):
                    if value:
                        self._bump(name, value)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: write failed: {exc}") from exc
        self._samples_rows += len(rows) - result.dropped_oldest
        self._events_rows += len(events)
        return result

    def _bump(self, name: str, value: int) -> None:
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, value),
        )

    def _prune_synced(self, limit: int) -> int:
        cur = self.conn.execute(
            "DELETE FROM samples WHERE seq IN (SELECT seq FROM samples WHERE seq <= ? ORDER BY seq LIMIT ?)",
            (self._acked["samples"], limit),
        )
        self._samples_rows -= cur.rowcount
        return cur.rowcount

    def _drop_oldest(self, count: int) -> int:
        cur = self.conn.execute(
            "DELETE FROM samples WHERE seq IN (SELECT seq FROM samples ORDER BY seq LIMIT ?)", (count,)
        )
        return cur.rowcount

    # -- reading and acknowledging -------------------------------------------------------------

    def read_unsynced(self, stream: str, limit: int) -> list[list[Any]]:
        """Rows above the acknowledged mark, oldest first, in the wire layout of cloud_sync.schema."""
        after = self._acked[stream]
        if stream == "samples":
            cur = self.conn.execute(
                "SELECT seq, device, tag, ts, value, quality FROM samples WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            return [list(row) for row in cur]
        cur = self.conn.execute(
            "SELECT seq, id, ts, device, kind, attributes FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [[seq, eid, ts, dev, kind, orjson.loads(attrs)] for seq, eid, ts, dev, kind, attrs in cur]

    def ack(self, stream: str, last_seq: int) -> None:
        """Mark every row of ``stream`` up to ``last_seq`` as delivered (never moves backwards)."""
        if last_seq <= self._acked[stream]:
            return
        try:
            self.conn.execute("UPDATE sync_state SET acked_seq = ? WHERE stream = ?", (last_seq, stream))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot record sync position: {exc}") from exc
        self._acked[stream] = last_seq

    def prune(self, older_than: float) -> int:
        """Delete synced rows with a timestamp before ``older_than``; returns rows deleted."""
        deleted = 0
        try:
            for stream in STREAMS:
                cur = self.conn.execute(
                    f"DELETE FROM {stream} WHERE seq <= ? AND ts < ?", (self._acked[stream], older_than)
                )
                deleted += cur.rowcount
                if stream == "samples":
                    self._samples_rows -= cur.rowcount
                else:
                    self._events_rows -= cur.rowcount
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: prune failed: {exc}") from exc
        return deleted

    # -- introspection --------------------------------------------------------------------

    def stats(self) -> BufferStats:
        last = {s: self._last_seq(s) for s in STREAMS}
        unsynced = {
            s: self.conn.execute(f"SELECT COUNT(*) FROM {s} WHERE seq > ?", (self._acked[s],)).fetchone()[0]
            for s in STREAMS
        }
        dropped = {name: value for name, value in self.conn.execute("SELECT name, value FROM counters")}
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return BufferStats(
            samples_rows=self._samples_rows,
            events_rows=self._events_rows,
            unsynced=unsynced,
            acked_seq=dict(self._acked),
            last_seq=last,
            dropped=dropped,
            file_bytes=size,
            max_rows=self.max_rows,
        )

    def latest_samples(self) -> list[Sample]:
        """The newest sample of every (device, tag), used to rebuild live values after a restart."""
        cur = self.conn.execute(
            "SELECT device, tag, ts, value, quality FROM samples WHERE seq IN "
            "(SELECT MAX(seq) FROM samples GROUP BY device, tag)"
        )
        return [Sample(d, t, ts, v, q) for d, t, ts, v, q in cur]

    def close(self) -> None:
        self.conn.close()

    def _count(self, table: str) -> int:
        return int(self.db[table].count)

    def _acked_seq(self, stream: str) -> int:
        row = self.conn.execute("SELECT acked_seq FROM sync_state WHERE stream = ?", (stream,)).fetchone()
        return int(row[0]) if row else 0

    def _last_seq(self, stream: str) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (stream,)).fetchone()
        return int(row[0]) if row else 0


def _db_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return value
