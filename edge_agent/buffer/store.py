"""SQLite store-and-forward buffer.

Samples and events are appended in batches, each batch one transaction, and get
a per-stream monotonically increasing sequence number (``seq``, AUTOINCREMENT, so
never reused). The uploader reads unsynced rows and marks a range synced only
after the collector answered 2xx (:mod:`edge_agent.buffer.ledger`).

Bounded twice: at most ``max_rows`` samples and at most ``max_bytes`` of database
pages in use (``(page_count - freelist_count) * page_size``, two header reads per
batch). When a batch would pass a bound, synced rows are deleted first; if unsynced
rows still fill it, the overflow policy applies: ``drop_oldest`` deletes the oldest
unsynced *samples*, ``drop_newest`` refuses the incoming ones. Events are never
dropped. Every drop is counted in the ``counters`` table (persistent) and reported
by :meth:`Buffer.stats`. Freed pages are reused by later inserts, so the file stops
growing at the cap; :meth:`Buffer.reclaim` gives free pages back to the OS
(``auto_vacuum=INCREMENTAL``).

At open the file is checked (``PRAGMA quick_check``); a damaged file is moved aside
and a fresh buffer is started (:mod:`edge_agent.buffer.recovery`).

The file is in WAL mode; with ``synchronous=NORMAL`` a committed batch survives a
crash or ``kill -9`` of the agent (``FULL`` also survives power loss).

All methods are blocking and must be called from one thread at a time (the
supervisor runs them on a dedicated single-thread executor).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from edge_agent.buffer.faults import BufferFault, fault
from edge_agent.buffer.ledger import STREAMS, QuarantineRecord, SyncLedger
from edge_agent.buffer.migrations import migrate
from edge_agent.buffer.recovery import IntegrityCheck, MovedAside, check_or_move_aside
from edge_agent.errors import StoreError
from edge_agent.model import Event, Mark, Quality, Sample

_DEFAULT_ROW_BYTES = 64.0
_EVENT_ROW_FACTOR = 4  # an event takes about as much room as this many samples
WAL_LIMIT_BYTES = 4 * 1024 * 1024
"""The WAL is truncated to this size after a checkpoint (it is not counted in ``max_bytes``)."""


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
    used_bytes: int = 0
    max_bytes: int = 0
    live_tail: dict[str, list[int] | None] = field(default_factory=dict)
    islands: dict[str, list[list[int]]] = field(default_factory=dict)
    oldest_unsynced_ts: float | None = None
    quarantined: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class AppendResult:
    samples: int
    events: int
    dropped_oldest: int = 0
    dropped_newest: int = 0
    pruned_synced: int = 0


class Buffer:
    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = 5_000_000,
        max_bytes: int = 1024**3,
        on_full: str = "drop_oldest",
        synchronous: str = "normal",
        integrity_check: IntegrityCheck = "quick",
    ) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.on_full = on_full
        path.parent.mkdir(parents=True, exist_ok=True)
        self.moved_aside: MovedAside | None = check_or_move_aside(path, integrity_check)
        try:
            self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file only
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self.conn.execute("PRAGMA busy_timeout=5000")
            self.conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            migrate(self.conn)
            self.page_size = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
            self.ledger = SyncLedger(self.conn)
            self._samples_rows = self._count("samples")
            self._events_rows = self._count("events")
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open buffer: {exc}") from exc

    # -- writing -------------------------------------------------------------------------

    def append(
        self, samples: Sequence[Sample], events: Sequence[Event] = (), marks: Sequence[Mark] = ()
    ) -> AppendResult:
        """Commit samples, events and delivery marks in one transaction (or raise BufferFault, committing nothing).

        A mark ``(source, mid, digest)`` records that a source's message was committed, so that the
        same message redelivered after a crash (before its acknowledgement reached the source) is
        recognised (see :meth:`delivery_marks`)."""
        result = AppendResult(samples=len(samples), events=len(events))
        # int(quality): an IntEnum would make sqlite3 look for an adapter on every row (about 2x slower)
        rows = [(s.device, s.tag, s.ts, s.value, int(s.quality)) for s in samples]
        added_events = 0
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self._make_room(result, rows)
                if result.dropped_newest:
                    rows = rows[: result.samples]
                if rows:
                    self.conn.executemany(
                        "INSERT INTO samples (device, tag, ts, value, quality) VALUES (?, ?, ?, ?, ?)", rows
                    )
                if events:
                    added_events = self.conn.executemany(
                        "INSERT OR IGNORE INTO events (id, ts, device, kind, attributes) VALUES (?, ?, ?, ?, ?)",
                        [(e.id, e.ts, e.device, e.kind, orjson.dumps(e.attributes).decode()) for e in events],
                    ).rowcount
                if marks:
                    self.conn.executemany(
                        "INSERT OR REPLACE INTO delivery_marks (source, mid, digest) VALUES (?, ?, ?)", marks
                    )
                for name in ("dropped_oldest", "dropped_newest"):
                    if getattr(result, name):
                        self._bump(name, getattr(result, name))
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except (sqlite3.Error, TypeError, OverflowError) as exc:
            raise fault(self.path, "write", exc) from exc
        # in-memory counts change only once the transaction is committed
        self._samples_rows += len(rows) - result.pruned_synced - result.dropped_oldest
        self._events_rows += added_events
        self.ledger.added("samples", len(rows) - result.dropped_oldest)
        self.ledger.added("events", added_events)
        return result

    def _make_room(self, result: AppendResult, rows: list[Any]) -> None:
        """Apply both bounds before inserting ``rows``: prune synced rows, then the overflow policy.

        A batch of events only is let through as it is: the next samples make room for it, so
        recording (say) the ``buffer_overflow`` event never drops samples by itself.
        """
        if not rows:
            return
        over_rows = self._samples_rows + len(rows) - self.max_rows
        over_bytes = 0
        if self.max_bytes:
            used = self.used_bytes()
            row_bytes = self._row_bytes(used)
            incoming = (len(rows) + _EVENT_ROW_FACTOR * result.events) * row_bytes
            excess = used + incoming - self.max_bytes
            over_bytes = math.ceil(excess / row_bytes) if excess > 0 else 0
        overflow = max(over_rows, over_bytes)
        if overflow <= 0:
            return
        result.pruned_synced = self._prune_synced(overflow)
        overflow -= result.pruned_synced
        if overflow <= 0:
            return
        if self.on_full == "drop_newest":
            keep = max(0, len(rows) - overflow)
            result.dropped_newest = len(rows) - keep
            result.samples = keep
        else:
            result.dropped_oldest = self._drop_oldest(overflow)

    def _bump(self, name: str, value: int) -> None:
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, value),
        )

    def _prune_synced(self, limit: int) -> int:
        """Delete up to ``limit`` synced samples, oldest first."""
        deleted = 0
        for lo, hi in self.ledger.marks["samples"].synced_ranges:
            if deleted >= limit:
                break
            cur = self.conn.execute(
                "DELETE FROM samples WHERE seq IN "
                "(SELECT seq FROM samples WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT ?)",
                (lo, hi, limit - deleted),
            )
            deleted += cur.rowcount
        return deleted

    def _drop_oldest(self, count: int) -> int:
        """Delete the ``count`` oldest unsynced samples (the overflow policy ``drop_oldest``)."""
        clause, params = self.ledger.marks["samples"].unsynced
        cur = self.conn.execute(
            f"DELETE FROM samples WHERE seq IN (SELECT seq FROM samples WHERE {clause} ORDER BY seq LIMIT ?)",
            (*params, count),
        )
        return int(cur.rowcount)

    def free_synced(self, limit: int = 100_000) -> int:
        """Delete synced samples regardless of retention (to make room on a full disk); returns rows freed."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                freed = self._prune_synced(limit)
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as exc:
            raise fault(self.path, "freeing synced rows", exc) from exc
        self._samples_rows -= freed
        return freed

    # -- reading and acknowledging -------------------------------------------------------------

    def read_unsynced(self, stream: str, limit: int) -> list[Any]:
        """The oldest unsynced rows, in the wire layout of cloud_sync.schema (tuples)."""
        try:
            return self.ledger.read_backlog(stream, limit)
        except sqlite3.Error as exc:
            raise fault(self.path, "read", exc) from exc

    def read_newest(self, stream: str, limit: int) -> list[Any]:
        """Rows for the live tail (see :meth:`SyncLedger.read_newest`)."""
        try:
            return self.ledger.read_newest(stream, limit)
        except sqlite3.Error as exc:
            raise fault(self.path, "read", exc) from exc

    def ack(self, stream: str, last_seq: int, first_seq: int | None = None) -> int:
        """Mark the delivered rows ``first_seq..last_seq`` synced (``first_seq`` defaults to the
        row after the watermark); returns how many rows became synced."""
        first = self.ledger.marks[stream].acked + 1 if first_seq is None else first_seq
        return self._in_transaction("recording the sync position", self.ledger.ack, stream, first, last_seq)

    def quarantine(self, record: QuarantineRecord) -> int:
        """Keep a batch the collector refused in the ``quarantine`` table and move past it."""
        return self._in_transaction("quarantining a batch", self.ledger.quarantine, record)

    def backlog(self) -> dict[str, int]:
        """Unsynced rows per stream (kept in memory: no table scan)."""
        return dict(self.ledger.unsynced)

    def prune(self, older_than: float) -> int:
        """Delete synced rows with a timestamp before ``older_than``; returns rows deleted."""
        deleted = 0
        try:
            for stream in STREAMS:
                for lo, hi in self.ledger.marks[stream].synced_ranges:
                    cur = self.conn.execute(
                        f"DELETE FROM {stream} WHERE seq BETWEEN ? AND ? AND ts < ?", (lo, hi, older_than)
                    )
                    deleted += cur.rowcount
                    if stream == "samples":
                        self._samples_rows -= cur.rowcount
                    else:
                        self._events_rows -= cur.rowcount
        except sqlite3.Error as exc:
            raise fault(self.path, "prune", exc) from exc
        return deleted

    def reclaim(self, max_pages: int = 16_384) -> int:
        """Give up to ``max_pages`` free pages back to the file system; returns pages released.

        Only when more than an eighth of the file (and at least 256 pages) is free, so space
        that the next inserts would reuse anyway is not shuffled around.
        """
        try:
            free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
            total = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
            if free < 256 or free * 8 < total:
                return 0
            # incremental_vacuum frees one page per step: executescript steps it to the end
            self.conn.executescript(f"PRAGMA incremental_vacuum({int(max_pages)});")
            after = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            raise fault(self.path, "reclaiming space", exc) from exc
        return total - after

    # -- introspection --------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of database pages holding data (free pages excluded); two header reads."""
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages - free) * self.page_size

    def stats(self) -> BufferStats:
        try:
            last = {s: self._last_seq(s) for s in STREAMS}
            dropped = {name: value for name, value in self.conn.execute("SELECT name, value FROM counters")}
            used = self.used_bytes()
            oldest = self.ledger.oldest_unsynced_ts("samples")
            quarantined = self.ledger.quarantined()
        except sqlite3.Error as exc:
            raise fault(self.path, "reading stats", exc) from exc
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*")
                   if p.is_file() and ".corrupt-" not in p.name)
        marks = self.ledger.marks
        return BufferStats(
            samples_rows=self._samples_rows,
            events_rows=self._events_rows,
            unsynced=dict(self.ledger.unsynced),
            acked_seq={s: m.acked for s, m in marks.items()},
            last_seq=last,
            dropped=dropped,
            file_bytes=size,
            max_rows=self.max_rows,
            used_bytes=used,
            max_bytes=self.max_bytes,
            live_tail={s: list(m.islands[-1]) if m.islands else None for s, m in marks.items()},
            islands={s: [list(i) for i in m.islands] for s, m in marks.items()},
            oldest_unsynced_ts=oldest,
            quarantined=quarantined,
        )

    def delivery_marks(self, source: str) -> dict[int, str]:
        """The committed messages of ``source`` by packet id (at most one per id: the newest)."""
        try:
            cur = self.conn.execute("SELECT mid, digest FROM delivery_marks WHERE source = ?", (source,))
            return {int(mid): str(digest) for mid, digest in cur}
        except sqlite3.Error as exc:
            raise fault(self.path, "read", exc) from exc

    def samples_since(self, since: float, devices: Collection[str], after_seq: int = 0,
                      limit: int = 50_000) -> tuple[list[Sample], int]:
        """Samples of ``devices`` stored from about ``since`` on, in storage order, a page at a time:
        ``(samples, last seq read)``; pass that seq back for the next page (an empty page ends it).

        Samples are stored in arrival order, which is time order per tag; the first seq at or after
        ``since`` is found by bisecting the seq index, so no scan of older rows is needed.
        """
        wanted = list(devices)
        if not wanted:
            return [], after_seq
        try:
            start = self._first_seq_from(since) if after_seq == 0 else after_seq + 1
            marks = ",".join("?" * len(wanted))
            rows = self.conn.execute(
                f"SELECT seq, device, tag, ts, value, quality FROM samples WHERE seq >= ? AND device IN ({marks}) "
                "ORDER BY seq LIMIT ?", (start, *wanted, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise fault(self.path, "read", exc) from exc
        if not rows:
            return [], after_seq
        return [Sample(d, t, ts, v, Quality(q)) for _, d, t, ts, v, q in rows if ts >= since], int(rows[-1][0])

    def _first_seq_from(self, since: float) -> int:
        """The lowest seq whose row has ``ts >= since``, assuming ts grows with seq (close enough: arrival order)."""
        lo_row = self.conn.execute("SELECT MIN(seq), MAX(seq) FROM samples").fetchone()
        if lo_row is None or lo_row[0] is None:
            return 1
        lo, hi = int(lo_row[0]), int(lo_row[1]) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            row = self.conn.execute("SELECT ts FROM samples WHERE seq >= ? ORDER BY seq LIMIT 1", (mid,)).fetchone()
            if row is None or row[0] >= since:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def latest_samples(self) -> list[Sample]:
        """The newest sample of every (device, tag), used to rebuild live values after a restart."""
        cur = self.conn.execute(
            "SELECT device, tag, ts, value, quality FROM samples WHERE seq IN "
            "(SELECT MAX(seq) FROM samples GROUP BY device, tag)"
        )
        return [Sample(d, t, ts, v, Quality(q)) for d, t, ts, v, q in cur]

    def close(self) -> None:
        self.conn.close()

    # -- helpers -----------------------------------------------------------------------------

    def _in_transaction(self, action: str, fn: Any, *args: Any) -> int:
        """Run a ledger change in one transaction; on failure its in-memory marks are restored."""
        saved = self.ledger.snapshot()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                result = int(fn(*args))
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                self.ledger.restore(saved)
                raise
        except sqlite3.Error as exc:
            raise fault(self.path, action, exc) from exc
        return result

    def _row_bytes(self, used: int) -> float:
        """Average bytes a row takes in the file (a default until there are enough rows to tell)."""
        rows = self._samples_rows + _EVENT_ROW_FACTOR * self._events_rows
        if rows < 1000:
            return _DEFAULT_ROW_BYTES
        return max(16.0, used / rows)

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (SQLite may already have rolled back a failed COMMIT)."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def _last_seq(self, stream: str) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (stream,)).fetchone()
        return int(row[0]) if row else 0


__all__ = ["AppendResult", "Buffer", "BufferFault", "BufferStats", "QuarantineRecord"]
