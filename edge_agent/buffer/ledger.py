"""Which buffered rows the collector has: the sync marks of each stream.

Each stream (``samples``, ``events``) has a watermark ``acked`` (every row up to it
is delivered) and up to :data:`MAX_ISLANDS` *islands*: delivered ranges above an older
backlog, oldest first. The newest island is the *live tail*: the uploader sends the
newest rows there while an outage's backlog still drains oldest-first. When a second
outage starts during a drain, the rows it leaves behind the tail become a second gap,
and after it the live tail starts a new island at the newest rows again (it *jumps*
when more than ``TAIL_JUMP_BATCHES`` batches wait above it), so live data never waits
behind a backlog. Gaps drain oldest-first; an island merges into the watermark (or into
the island below it) once no unsynced row is left between them.

Marks only ever cover rows that were delivered: an acknowledged range must touch the
watermark or an island, or start a new island above the newest one, otherwise
:meth:`SyncLedger.ack` refuses it. Every read returns unsynced rows only, so no row is
sent twice in normal operation.

A row is *synced* when ``seq <= acked`` or it lies in an island; all other rows are
*unsynced* (the backlog). The ledger keeps the count of unsynced rows in memory so
status and batch headers cost no table scan. The islands are kept in ``sync_islands``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson

STREAMS = ("samples", "events")
_COLUMNS = {
    "samples": "seq, device, tag, ts, value, quality",
    "events": "seq, id, ts, device, kind, attributes",
}
MAX_ISLANDS = 8
"""Most delivered ranges kept above the watermark per stream; at the bound the live tail stops jumping."""
TAIL_JUMP_BATCHES = 4
"""The live tail starts a new island at the newest rows when more than this many batches wait above it."""


@dataclass
class Mark:
    """The sync position of one stream: the watermark and the islands above it, oldest first."""

    acked: int = 0
    islands: list[tuple[int, int]] = field(default_factory=list)

    @property
    def has_tail(self) -> bool:
        return bool(self.islands)

    @property
    def tail(self) -> tuple[int, int] | None:
        """The live tail: the newest island."""
        return self.islands[-1] if self.islands else None

    @property
    def synced_ranges(self) -> list[tuple[int, int]]:
        """The synced seq ranges, oldest first (each one a cheap rowid range for SQLite)."""
        ranges = [(1, self.acked)] if self.acked else []
        return ranges + list(self.islands)

    @property
    def unsynced(self) -> tuple[str, tuple[int, ...]]:
        """SQL predicate (and its parameters) matching unsynced rows."""
        clause = "(seq > ?" + " AND seq NOT BETWEEN ? AND ?" * len(self.islands) + ")"
        params: list[int] = [self.acked]
        for first, last in self.islands:
            params += [first, last]
        return clause, tuple(params)

    def copy(self) -> Mark:
        return Mark(self.acked, list(self.islands))


@dataclass(frozen=True)
class QuarantineRecord:
    """A batch the collector refused for good, kept in the ``quarantine`` table."""

    batch_id: str
    stream: str
    first_seq: int
    last_seq: int
    rows: int
    status: int
    answer: str
    at: float
    body: bytes | None = None


class NotContiguous(ValueError):
    """An acknowledged range would mark undelivered rows as synced."""


QUARANTINE_BODIES_KEPT = 100
"""Bodies of the most recent quarantined batches that are kept; older records keep only their range."""


class SyncLedger:
    """The sync marks and unsynced counts of the buffer's streams (runs on the buffer thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.marks = {s: self._load(s) for s in STREAMS}
        self.unsynced = {s: self._count_unsynced(s) for s in STREAMS}

    # -- reading -------------------------------------------------------------------------

    def read_backlog(self, stream: str, limit: int) -> list[Any]:
        """The oldest unsynced rows (up to the oldest island, if there is one), oldest first."""
        mark = self._normalize(stream)
        upper = mark.islands[0][0] if mark.islands else 2**63 - 1
        cur = self.conn.execute(
            f"SELECT {_COLUMNS[stream]} FROM {stream} WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
            (mark.acked, upper, limit),
        )
        return _rows(stream, cur.fetchall())

    def read_newest(self, stream: str, limit: int) -> list[Any]:
        """Rows for the live tail, oldest first: the rows right above the tail, or the newest
        ``limit`` unsynced rows when there is no tail or more than ``TAIL_JUMP_BATCHES x limit``
        rows wait above it (the next acknowledgement then starts a new island there)."""
        mark = self._normalize(stream)
        tail = mark.tail
        if tail is not None and not self._tail_behind(stream, mark, limit):
            cur = self.conn.execute(
                f"SELECT {_COLUMNS[stream]} FROM {stream} WHERE seq > ? ORDER BY seq LIMIT ?", (tail[1], limit)
            )
            return _rows(stream, cur.fetchall())
        above = tail[1] if tail is not None else mark.acked
        cur = self.conn.execute(
            f"SELECT {_COLUMNS[stream]} FROM {stream} WHERE seq > ? ORDER BY seq DESC LIMIT ?", (above, limit)
        )
        return _rows(stream, cur.fetchall()[::-1])

    def _tail_behind(self, stream: str, mark: Mark, limit: int) -> bool:
        """Whether the live tail should jump: many rows wait above it and an island is still free."""
        if len(mark.islands) >= MAX_ISLANDS:
            return False
        newest = self.conn.execute(f"SELECT MAX(seq) FROM {stream}").fetchone()[0]
        return newest is not None and int(newest) - mark.islands[-1][1] > TAIL_JUMP_BATCHES * max(1, limit)

    def oldest_unsynced_ts(self, stream: str) -> float | None:
        clause, params = self.marks[stream].unsynced
        row = self.conn.execute(
            f"SELECT ts FROM {stream} WHERE {clause} ORDER BY seq LIMIT 1", params
        ).fetchone()
        return None if row is None else float(row[0])

    # -- acknowledging ---------------------------------------------------------------------

    def ack(self, stream: str, first_seq: int, last_seq: int) -> int:
        """Mark the delivered range ``first_seq..last_seq`` synced; returns how many rows became synced.

        The range must touch the watermark or an island (across rows that are all synced or
        gone), or lie above the newest island (the live tail jumping ahead). Must be called
        inside the caller's transaction (or in autocommit mode, where it is one statement
        group that the caller commits).
        """
        mark = self._normalize(stream)
        if last_seq <= mark.acked:
            return 0  # already synced: the mark never moves back
        if last_seq < first_seq:
            raise ValueError(f"empty range {first_seq}..{last_seq}")
        if not self._may_join(stream, mark, first_seq, last_seq):
            islands = ", ".join(f"{a}..{b}" for a, b in mark.islands) or "none"
            raise NotContiguous(
                f"{stream} {first_seq}..{last_seq} touches neither the synced mark {mark.acked} "
                f"nor an island of the live tail ({islands})"
            )
        clause, params = mark.unsynced
        newly = int(self.conn.execute(
            f"SELECT COUNT(*) FROM {stream} WHERE seq BETWEEN ? AND ? AND {clause}",
            (first_seq, last_seq, *params),
        ).fetchone()[0])
        mark.islands = sorted([*mark.islands, (first_seq, last_seq)])
        self._normalize(stream, save=True)
        self.unsynced[stream] = max(0, self.unsynced[stream] - newly)
        return newly

    def quarantine(self, record: QuarantineRecord) -> int:
        """Keep a refused batch in the ``quarantine`` table and move past its range."""
        self.conn.execute(
            "INSERT INTO quarantine (batch_id, stream, first_seq, last_seq, rows, status, answer, at, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.batch_id, record.stream, record.first_seq, record.last_seq, record.rows, record.status,
             record.answer, record.at, record.body),
        )
        self.conn.execute(
            "UPDATE quarantine SET body = NULL WHERE body IS NOT NULL AND id <= "
            "(SELECT MAX(id) FROM quarantine) - ?", (QUARANTINE_BODIES_KEPT,),
        )
        return self.ack(record.stream, record.first_seq, record.last_seq)

    def quarantined(self) -> dict[str, int]:
        batches, rows = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(rows), 0) FROM quarantine").fetchone()
        return {"batches": int(batches), "rows": int(rows)}

    # -- bookkeeping for the store ----------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, Mark], dict[str, int]]:
        """The in-memory state, to restore when the transaction that changes it rolls back."""
        return {s: m.copy() for s, m in self.marks.items()}, dict(self.unsynced)

    def restore(self, state: tuple[dict[str, Mark], dict[str, int]]) -> None:
        self.marks, self.unsynced = state

    def added(self, stream: str, rows: int) -> None:
        self.unsynced[stream] += rows

    def save(self, stream: str) -> None:
        mark = self.marks[stream]
        self.conn.execute("UPDATE sync_state SET acked_seq = ? WHERE stream = ?", (mark.acked, stream))
        self.conn.execute("DELETE FROM sync_islands WHERE stream = ?", (stream,))
        self.conn.executemany(
            "INSERT INTO sync_islands (stream, first_seq, last_seq) VALUES (?, ?, ?)",
            [(stream, first, last) for first, last in mark.islands],
        )

    def _normalize(self, stream: str, save: bool = False) -> Mark:
        """Merge the islands that overlap or meet the range below them across rows that are all
        gone (deleted by the overflow policy) into it; the lowest range is the watermark."""
        mark = self.marks[stream]
        merged: list[tuple[int, int]] = [(0, mark.acked)]
        for first, last in mark.islands:
            low, high = merged[-1]
            if first <= high + 1 or self._no_rows_between(stream, high, first):
                merged[-1] = (low, max(high, last))
            else:
                merged.append((first, last))
        acked, islands = merged[0][1], merged[1:]
        if acked != mark.acked or islands != mark.islands:
            mark.acked, mark.islands = acked, islands
            save = True
        if save:
            self.save(stream)
        return mark

    def _may_join(self, stream: str, mark: Mark, first_seq: int, last_seq: int) -> bool:
        """Whether ``first_seq..last_seq`` touches the watermark or an island, or starts a new
        island above the newest one (while fewer than :data:`MAX_ISLANDS` exist)."""
        for low, high in [(0, mark.acked), *mark.islands]:
            if first_seq <= high + 1 and last_seq >= low - 1:
                return True  # overlaps or is adjacent
            if first_seq > high and self._no_rows_between(stream, high, first_seq):
                return True  # meets the range from above across rows that are gone
            if last_seq < low and self._no_rows_between(stream, last_seq, low):
                return True  # meets the range from below
        top = mark.islands[-1][1] if mark.islands else mark.acked
        return first_seq > top and len(mark.islands) < MAX_ISLANDS

    def _no_rows_between(self, stream: str, after: int, before: int) -> bool:
        """True when no row lies strictly between ``after`` and ``before``."""
        row = self.conn.execute(
            f"SELECT 1 FROM {stream} WHERE seq > ? AND seq < ? LIMIT 1", (after, before)
        ).fetchone()
        return row is None

    def _load(self, stream: str) -> Mark:
        row = self.conn.execute("SELECT acked_seq FROM sync_state WHERE stream = ?", (stream,)).fetchone()
        islands = [
            (int(first), int(last)) for first, last in self.conn.execute(
                "SELECT first_seq, last_seq FROM sync_islands WHERE stream = ? ORDER BY first_seq", (stream,)
            )
        ]
        return Mark(int(row[0]) if row else 0, islands)

    def _count_unsynced(self, stream: str) -> int:
        clause, params = self.marks[stream].unsynced
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {stream} WHERE {clause}", params).fetchone()[0])


def _rows(stream: str, rows: list[Any]) -> list[Any]:
    """Rows in the wire layout. An event's attributes stay the JSON text they were stored as
    (``orjson.Fragment``, written into the batch as is): parsing them only to serialise them again
    cost time and, for large attribute sets such as ``twin_changed``, tens of MB per batch."""
    if stream == "samples":
        return rows
    return [(seq, eid, ts, dev, kind, orjson.Fragment(attrs)) for seq, eid, ts, dev, kind, attrs in rows]


def read_range(conn: sqlite3.Connection, stream: str, first_seq: int, last_seq: int) -> list[Any]:
    """The rows ``first_seq..last_seq`` of ``stream`` that are still in the buffer, in the wire layout."""
    if stream not in _COLUMNS:
        raise ValueError(f"unknown stream {stream!r}")
    cur = conn.execute(
        f"SELECT {_COLUMNS[stream]} FROM {stream} WHERE seq BETWEEN ? AND ? ORDER BY seq", (first_seq, last_seq)
    )
    return _rows(stream, cur.fetchall())
