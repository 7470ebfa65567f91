"""Quarantined batches, for the operator: list them, and replay them once the collector is fixed.

Works on the buffer file directly (``edge-agent quarantine list|replay --config FILE``), also while
the agent runs: SQLite serialises the two writers (WAL, busy timeout). A replay sends the batch as it
was refused (the stored body) or, for an old record whose body is no longer kept, the batch rebuilt
from its rows if they are still in the buffer. The answer is recorded on the record
(``replayed_at``, ``replay_status``, ``replay_answer``) together with a ``batch_replayed`` event in
the same transaction; the running agent sends that event to the collector like any other.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from cloud_sync.uploader import encode_batch, post_body
from edge_agent.behaviour.kinds import BATCH_REPLAYED
from edge_agent.buffer.faults import fault
from edge_agent.buffer.ledger import read_range
from edge_agent.buffer.migrations import migrate
from edge_agent.errors import StoreError, UploadError
from edge_agent.model import Event

GATEWAY_DEVICE = "_gateway"


@dataclass(frozen=True)
class QuarantineEntry:
    """One record of the ``quarantine`` table (without its body)."""

    id: int
    batch_id: str
    stream: str
    first_seq: int
    last_seq: int
    rows: int
    status: int
    answer: str
    at: float
    body_kept: bool
    replayed_at: float | None
    replay_status: int | None
    replay_answer: str | None

    @property
    def delivered(self) -> bool:
        """A replay reached the collector and it answered 2xx."""
        return self.replay_status is not None and 200 <= self.replay_status < 300

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_SELECT = (
    "SELECT id, batch_id, stream, first_seq, last_seq, rows, status, answer, at, body IS NOT NULL, "
    "replayed_at, replay_status, replay_answer FROM quarantine"
)


class QuarantineFile:
    """The quarantine of the buffer file at ``path`` (which must exist)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise StoreError(f"{path}: no buffer file (has the agent run with this data_dir?)")
        try:
            self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=10)
            self.conn.execute("PRAGMA busy_timeout=10000")
            migrate(self.conn)
        except sqlite3.Error as exc:
            raise fault(path, "opening the buffer", exc) from exc

    def entries(self) -> list[QuarantineEntry]:
        """Every record, oldest first."""
        try:
            return [_entry(row) for row in self.conn.execute(_SELECT + " ORDER BY id")]
        except sqlite3.Error as exc:
            raise fault(self.path, "reading the quarantine", exc) from exc

    def entry(self, entry_id: int) -> QuarantineEntry:
        try:
            row = self.conn.execute(_SELECT + " WHERE id = ?", (entry_id,)).fetchone()
        except sqlite3.Error as exc:
            raise fault(self.path, "reading the quarantine", exc) from exc
        if row is None:
            raise StoreError(f"{self.path}: no quarantined batch with id {entry_id} (see: edge-agent quarantine list)")
        return _entry(row)

    def stored_body(self, entry: QuarantineEntry) -> bytes | None:
        """The body as it was sent and refused, if it is still kept."""
        try:
            row = self.conn.execute("SELECT body FROM quarantine WHERE id = ?", (entry.id,)).fetchone()
        except sqlite3.Error as exc:
            raise fault(self.path, "reading the quarantine", exc) from exc
        return None if row is None or row[0] is None else bytes(row[0])

    def rows(self, entry: QuarantineEntry) -> list[Any] | None:
        """The batch's rows if every one of them is still in the buffer (synced rows are pruned after
        ``retention_s``), else None."""
        try:
            rows = read_range(self.conn, entry.stream, entry.first_seq, entry.last_seq)
        except sqlite3.Error as exc:
            raise fault(self.path, "reading rows", exc) from exc
        return rows if len(rows) == entry.rows else None

    def record_replay(self, entry: QuarantineEntry, status: int, answer: str, now: float | None = None) -> Event:
        """Keep the collector's answer to a replay on the record and add a ``batch_replayed`` event, in
        one transaction; returns the event."""
        now = time.time() if now is None else now
        delivered = 200 <= status < 300
        event = Event(GATEWAY_DEVICE, BATCH_REPLAYED, {
            "quarantine_id": entry.id,
            "batch_id": entry.batch_id,
            "stream": entry.stream,
            "first_seq": entry.first_seq,
            "last_seq": entry.last_seq,
            "rows": entry.rows,
            "status": status,
            "result": "delivered" if delivered else "refused",
            "answer": answer,
        }, ts=now)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.execute(
                    "UPDATE quarantine SET replayed_at = ?, replay_status = ?, replay_answer = ? WHERE id = ?",
                    (now, status, answer, entry.id),
                )
                self.conn.execute(
                    "INSERT OR IGNORE INTO events (id, ts, device, kind, attributes) VALUES (?, ?, ?, ?, ?)",
                    (event.id, event.ts, event.device, event.kind, orjson.dumps(event.attributes).decode()),
                )
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise fault(self.path, "recording a replay", exc) from exc
        return event

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class ReplayResult:
    """What became of one replayed batch: ``delivered``, ``refused`` (status and answer kept),
    ``gone`` (neither body nor rows are left) or ``unreachable`` (nothing recorded)."""

    entry: QuarantineEntry
    result: str
    status: int | None = None
    answer: str = ""


async def replay(
    quarantine: QuarantineFile, entries: Sequence[QuarantineEntry], client: httpx.AsyncClient, *,
    url: str, api_key: str, gateway_id: str,
) -> list[ReplayResult]:
    """Send each entry's batch to the collector again, in order; stops at the first transport error
    (the rest would fail the same way)."""
    results: list[ReplayResult] = []
    for entry in entries:
        body = quarantine.stored_body(entry)
        if body is None:
            rows = quarantine.rows(entry)
            if rows is None:
                results.append(ReplayResult(entry, "gone", answer="body not kept and rows pruned from the buffer"))
                continue
            body = encode_batch(gateway_id, entry.stream, rows, {})
        try:
            status, answer = await post_body(client, url, api_key, body)
        except UploadError as exc:
            results.append(ReplayResult(entry, "unreachable", answer=str(exc)))
            break
        quarantine.record_replay(entry, status, answer)
        results.append(ReplayResult(entry, "delivered" if 200 <= status < 300 else "refused", status, answer))
    return results


def _entry(row: tuple[Any, ...]) -> QuarantineEntry:
    (qid, batch_id, stream, first, last, rows, status, answer, at, kept, replayed_at, replay_status,
     replay_answer) = row
    return QuarantineEntry(
        int(qid), str(batch_id), str(stream), int(first), int(last), int(rows), int(status), str(answer),
        float(at), bool(kept), None if replayed_at is None else float(replayed_at),
        None if replay_status is None else int(replay_status), replay_answer,
    )


__all__ = ["BATCH_REPLAYED", "QuarantineEntry", "QuarantineFile", "ReplayResult", "replay"]
