"""Which buffered rows the collector has: the sync marks of each stream.

Each stream (``samples``, ``events``) has a watermark ``acked`` (every row up to it
is delivered) and at most one *live tail*, a delivered range ``tail_first..tail_acked``
above an older backlog. The tail lets the uploader send the newest rows while an
outage's backlog still drains oldest-first; once the backlog below the tail is gone
the two merge into the watermark. Marks only ever cover rows that were delivered:
an acknowledged range must touch the watermark or the tail, or start the tail, with
no undelivered row in between, otherwise :meth:`SyncLedger.ack` refuses it.

A row is *synced* when ``seq <= acked`` or it lies in the tail; all other rows are
*unsynced* (the backlog). The ledger keeps the count of unsynced rows in memory so
status and batch headers cost no table scan.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from typing import Any

import orjson

STREAMS = ("samples", "events")
_COLUMNS = {
    "samples": "seq, device, tag, ts, value, quality",
    "events": "seq, id, ts, device, kind, attributes",
}


@dataclass
class Mark:
    """The sync position of one stream (``tail_first == 0``: no tail)."""

    acked: int = 0
    tail_first: int = 0
    tail_acked: int = 0

    @property
    def has_tail(self) -> bool:
        return self.tail_first > 0

    @property
    def synced_ranges(self) -> list[tuple[int, int]]:
        """The synced seq ranges, oldest first (each one a cheap rowid range for SQLite)."""
        ranges = [(1, self.acked)] if self.acked else []
        if self.has_tail:
            ranges.append((self.tail_first, self.tail_acked))
        return ranges

    @property
    def unsynced(self) -> tuple[str, tuple[int, int, int]]:
        """SQL predicate (and its parameters) matching unsynced rows."""
        return "(seq > ? AND seq NOT BETWEEN ? AND ?)", (self.acked, self.tail_first, self.tail_acked)


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
        """The oldest unsynced rows (below the live tail, if there is one), oldest first."""
        mark = self._normalize(stream)
        upper = mark.tail_first if mark.has_tail else 2**63 - 1
        cur = self.conn.execute(
            f"SELECT {_COLUMNS[stream]} FROM {stream} WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
            (mark.acked, upper, limit),
        )
        return _rows(stream, cur.fetchall())

    def read_newest(self, stream: str, limit: int) -> list[Any]:
        """Rows for the live tail: those above the tail, or the newest unsynced rows; oldest first."""
        mark = self._normalize(stream)
        if mark.has_tail:
            cur = self.conn.execute(
                f"SELECT {_COLUMNS[stream]} FROM {stream} WHERE seq > ? ORDER BY seq LIMIT ?",
                (mark.tail_acked, limit),
            )
            return _rows(stream, cur.fetchall())
        cur = self.conn.execute(
            f"SELECT {_COLUMNS[stream]} FROM {stream} WHERE seq > ? ORDER BY seq DESC LIMIT ?",
            (mark.acked, limit),
        )
        return _rows(stream, cur.fetchall()[::-1])

    def oldest_unsynced_ts(self, stream: str) -> float | None:
        clause, params = self.marks[stream].unsynced
        row = self.conn.execute(
            f"SELECT ts FROM {stream} WHERE {clause} ORDER BY seq LIMIT 1", params
        ).fetchone()
        return None if row is None else float(row[0])

    # -- acknowledging ---------------------------------------------------------------------

    def ack(self, stream: str, first_seq: int, last_seq: int) -> int:
        """Mark the delivered range ``first_seq..last_seq`` synced; returns how many rows became synced.

        Must be called inside the caller's transaction (or in autocommit mode, where it
        is one statement group that the caller commits).
        """
        mark = self._normalize(stream)
        if last_seq <= mark.acked:
            return 0  # already synced: the mark never moves back
        if last_seq < first_seq:
            raise ValueError(f"empty range {first_seq}..{last_seq}")
        clause, params = mark.unsynced
        newly = int(self.conn.execute(
            f"SELECT COUNT(*) FROM {stream} WHERE seq BETWEEN ? AND ? AND {clause}",
            (first_seq, last_seq, *params),
        ).fetchone()[0])
        if first_seq <= mark.acked + 1 or self._none_unsynced(stream, mark.acked, first_seq):
            mark.acked = last_seq
            if mark.has_tail and mark.acked >= mark.tail_first - 1:
                mark.acked = max(mark.acked, mark.tail_acked)
                mark.tail_first = mark.tail_acked = 0
        elif mark.has_tail and self._touches_tail(stream, first_seq, last_seq):
            mark.tail_first = min(mark.tail_first, first_seq)
            mark.tail_acked = max(mark.tail_acked, last_seq)
        elif not mark.has_tail:
            mark.tail_first, mark.tail_acked = first_seq, last_seq
        else:
            raise NotContiguous(
                f"{stream} {first_seq}..{last_seq} touches neither the synced mark {mark.acked} "
                f"nor the live tail {mark.tail_first}..{mark.tail_acked}"
            )
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
        return {s: replace(m) for s, m in self.marks.items()}, dict(self.unsynced)

    def restore(self, state: tuple[dict[str, Mark], dict[str, int]]) -> None:
        self.marks, self.unsynced = state

    def added(self, stream: str, rows: int) -> None:
        self.unsynced[stream] += rows

    def save(self, stream: str) -> None:
        mark = self.marks[stream]
        self.conn.execute(
            "UPDATE sync_state SET acked_seq = ?, tail_first = ?, tail_acked = ? WHERE stream = ?",
            (mark.acked, mark.tail_first, mark.tail_acked, stream),
        )

    def _normalize(self, stream: str, save: bool = False) -> Mark:
        """Merge the tail into the watermark once no unsynced row is left below it."""
        mark = self.marks[stream]
        if mark.has_tail and self._none_unsynced(stream, mark.acked, mark.tail_first):
            mark.acked = max(mark.acked, mark.tail_acked)
            mark.tail_first = mark.tail_acked = 0
            save = True
        if save:
            self.save(stream)
        return mark

    def _touches_tail(self, stream: str, first_seq: int, last_seq: int) -> bool:
        """Whether ``first_seq..last_seq`` overlaps the tail or meets it across rows that are all synced."""
        mark = self.marks[stream]
        if first_seq > mark.tail_acked + 1:
            return self._none_unsynced(stream, mark.tail_acked, first_seq)
        if last_seq < mark.tail_first - 1:
            return self._none_unsynced(stream, last_seq, mark.tail_first)
        return True

    def _none_unsynced(self, stream: str, after: int, before: int) -> bool:
        """True when no row lies strictly between ``after`` and ``before`` (both synced or absent)."""
        mark = self.marks[stream]
        clause, params = mark.unsynced
        row = self.conn.execute(
            f"SELECT 1 FROM {stream} WHERE seq > ? AND seq < ? AND {clause} LIMIT 1", (after, before, *params)
        ).fetchone()
        return row is None

    def _load(self, stream: str) -> Mark:
        row = self.conn.execute(
            "SELECT acked_seq, tail_first, tail_acked FROM sync_state WHERE stream = ?", (stream,)
        ).fetchone()
        return Mark(*(int(v) for v in row)) if row else Mark()

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
