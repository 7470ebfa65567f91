"""The SQLite buffer: transactions, sequence numbers, sync marks, live tail, bounds and drops, durability,
corruption and write failures."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from edge_agent.buffer import BufferFault, OverflowReporter, QuarantineRecord
from edge_agent.buffer.migrations import MIGRATIONS
from edge_agent.buffer.store import Buffer
from edge_agent.errors import StoreError
from edge_agent.model import Event, Quality, Sample


def samples(n: int, start: int = 0, device: str = "d") -> list[Sample]:
    return [Sample(device, "t", 1000.0 + i, float(i)) for i in range(start, start + n)]


def test_append_assigns_increasing_seq_and_reads_unsynced(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append(samples(3), [Event("d", "started", {"a": 1}, ts=5.0, id="e1")])
    buf.append([Sample("d", "s", 1.0, "text"), Sample("d", "b", 2.0, True, Quality.BAD)])
    rows = buf.read_unsynced("samples", 10)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[3] == (4, "d", "s", 1.0, "text", 0)
    assert rows[4] == (5, "d", "b", 2.0, 1, 2)
    (event,) = buf.read_unsynced("events", 10)
    assert event[:5] == (1, "e1", 5.0, "d", "started") and orjson.loads(orjson.dumps(event[5])) == {"a": 1}
    buf.ack("samples", 3)
    assert [r[0] for r in buf.read_unsynced("samples", 10)] == [4, 5]
    stats = buf.stats()
    assert stats.unsynced == {"samples": 2, "events": 1}
    assert stats.samples_rows == 5
    buf.close()


def test_sync_mark_survives_reopen_and_never_moves_back(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append(samples(10))
    buf.ack("samples", 7)
    buf.ack("samples", 4)
    buf.close()
    buf = Buffer(tmp_path / "b.sqlite")
    assert [r[0] for r in buf.read_unsynced("samples", 100)] == [8, 9, 10]
    buf.close()


def test_seq_is_never_reused_after_prune(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append(samples(5))
    buf.ack("samples", 5)
    assert buf.prune(older_than=10_000.0) == 5
    buf.append(samples(1))
    assert buf.read_unsynced("samples", 10)[0][0] == 6
    buf.close()


def test_prune_keeps_unsynced_rows(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append(samples(10))
    buf.ack("samples", 4)
    assert buf.prune(older_than=10_000.0) == 4
    assert buf.stats().samples_rows == 6
    assert len(buf.read_unsynced("samples", 100)) == 6
    buf.close()


def test_full_buffer_prunes_synced_rows_before_dropping(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite", max_rows=100)
    buf.append(samples(100))
    buf.ack("samples", 30)
    result = buf.append(samples(30, start=100))
    assert result.dropped_oldest == 0
    assert buf.stats().samples_rows == 100
    assert len(buf.read_unsynced("samples", 1000)) == 100
    buf.close()


def test_drop_oldest_counts_every_drop_and_keeps_events(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite", max_rows=100, on_full="drop_oldest")
    buf.append(samples(100), [Event("d", "e") for _ in range(5)])
    result = buf.append(samples(25, start=100))
    assert result.dropped_oldest == 25
    rows = buf.read_unsynced("samples", 1000)
    assert len(rows) == 100
    assert rows[0][0] == 26 and rows[-1][0] == 125  # the oldest went, the newest stayed
    stats = buf.stats()
    assert stats.dropped == {"dropped_oldest": 25}
    assert stats.events_rows == 5
    buf.close()
    assert Buffer(tmp_path / "b.sqlite").stats().dropped == {"dropped_oldest": 25}  # counted persistently


def test_drop_newest_refuses_incoming(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite", max_rows=100, on_full="drop_newest")
    buf.append(samples(90))
    result = buf.append(samples(25, start=90))
    assert (result.samples, result.dropped_newest) == (10, 15)
    rows = buf.read_unsynced("samples", 1000)
    assert rows[-1][4] == 99.0
    assert buf.stats().dropped == {"dropped_newest": 15}
    buf.close()


def test_migrations_recorded_and_newer_schema_refused_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = Buffer(path)
    names = [r[0] for r in buf.conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    buf.conn.execute("INSERT INTO _migrations VALUES ('9999_from_the_future', 0)")
    buf.close()
    with pytest.raises(StoreError, match="newer version"):
        Buffer(path)
    assert path.exists() and not list(tmp_path.glob("*.corrupt-*"))  # refused, never moved aside


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edge_agent.buffer.store import Buffer
    from edge_agent.model import Sample
    buf = Buffer(Path(sys.argv[1]))
    i = 0
    while True:
        buf.append([Sample("d", "t", float(i + k), float(i + k)) for k in range(100)])
        i += 100
        print(i, flush=True)
    """
)


def test_committed_rows_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    confirmed = 0
    deadline = time.monotonic() + 20
    while confirmed < 20_000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        confirmed = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert confirmed >= 20_000, "the writer did not get going"
    buf = Buffer(path)
    assert buf.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = buf.read_unsynced("samples", 10_000_000)
    # every confirmed commit is there, whole batches only, in order, without gaps
    assert len(rows) >= confirmed and len(rows) % 100 == 0
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert [r[4] for r in rows] == [float(i) for i in range(len(rows))]
    buf.close()


# -- bounded disk -------------------------------------------------------------------------------


def test_byte_cap_drops_oldest_samples_counted_exactly_and_never_events(tmp_path: Path) -> None:
    cap = 256 * 1024
    buf = Buffer(tmp_path / "b.sqlite", max_bytes=cap)
    buf.append([], [Event("d", "e", {"i": i}) for i in range(20)])
    total = 0
    for _ in range(60):
        result = buf.append(samples(500, start=total))
        total += 500
        assert result.samples == 500
    stats = buf.stats()
    assert stats.used_bytes <= cap * 1.05
    assert buf.conn.execute("PRAGMA page_count").fetchone()[0] * buf.page_size <= cap * 1.1
    seqs = [r[0] for r in buf.read_unsynced("samples", 10**6)]
    dropped = stats.dropped["dropped_oldest"]
    assert dropped > 0
    assert seqs == list(range(dropped + 1, total + 1))  # exactly the oldest went, each one counted
    assert stats.unsynced["samples"] == len(seqs)
    assert stats.events_rows == 20 and stats.unsynced["events"] == 20
    buf.close()


def test_byte_cap_prunes_synced_before_dropping(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite", max_bytes=256 * 1024)
    buf.append(samples(2000))
    buf.ack("samples", 2000)
    for i in range(1, 25):
        buf.append(samples(500, start=2000 + 500 * i))
    stats = buf.stats()
    dropped = stats.dropped["dropped_oldest"]
    assert dropped > 0
    # every synced row went before the first unsynced one was dropped
    assert buf.conn.execute("SELECT COUNT(*) FROM samples WHERE seq <= 2000").fetchone()[0] == 0
    assert stats.unsynced["samples"] + dropped == 24 * 500
    assert buf.read_unsynced("samples", 1)[0][0] == 2000 + dropped + 1
    buf.close()


def test_byte_cap_drop_newest_refuses_incoming(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite", max_bytes=128 * 1024, on_full="drop_newest")
    stored = refused = 0
    for i in range(40):
        result = buf.append(samples(500, start=500 * i))
        stored += result.samples
        refused += result.dropped_newest
    assert refused > 0 and stored + refused == 40 * 500
    seqs = [r[0] for r in buf.read_unsynced("samples", 10**6)]
    assert seqs == list(range(1, stored + 1))  # the first rows stay, later ones were refused
    assert buf.stats().dropped == {"dropped_newest": refused}
    buf.close()


def test_reclaim_returns_free_pages_to_the_file_system(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = Buffer(path)
    assert buf.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    buf.append(samples(50_000))
    buf.ack("samples", 50_000)
    before = buf.conn.execute("PRAGMA page_count").fetchone()[0]
    assert buf.prune(older_than=10**9) == 50_000
    released = buf.reclaim()
    assert released > before // 2
    assert path.stat().st_size < before * buf.page_size / 2
    buf.close()


def test_old_file_gets_incremental_vacuum_by_a_named_migration(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for statement in str(MIGRATIONS[0][1]).split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO _migrations VALUES ('0001_initial', 0)")
    conn.execute("INSERT INTO samples (device, tag, ts, value) VALUES ('d', 't', 1.0, 2.0)")
    conn.execute("UPDATE sync_state SET acked_seq = 0")
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    conn.close()
    buf = Buffer(path)
    assert buf.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    names = [r[0] for r in buf.conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    assert buf.read_unsynced("samples", 10) == [(1, "d", "t", 1.0, 2.0, 0)]
    buf.close()


# -- live tail and quarantine ---------------------------------------------------------------------


def test_live_tail_goes_ahead_of_the_backlog_and_merges_when_it_is_drained(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append(samples(100))
    newest = buf.read_newest("samples", 10)
    assert [r[0] for r in newest] == list(range(91, 101))
    assert buf.ack("samples", 100, first_seq=91) == 10
    assert buf.stats().live_tail["samples"] == [91, 100]
    assert buf.backlog()["samples"] == 90
    buf.append(samples(5, start=100))
    assert [r[0] for r in buf.read_newest("samples", 10)] == [101, 102, 103, 104, 105]
    buf.ack("samples", 105, first_seq=101)
    assert buf.stats().live_tail["samples"] == [91, 105]
    # the backlog stops below the tail, oldest first
    assert [r[0] for r in buf.read_unsynced("samples", 1000)] == list(range(1, 91))
    buf.ack("samples", 50, first_seq=1)
    buf.ack("samples", 90, first_seq=51)
    stats = buf.stats()
    assert stats.live_tail["samples"] is None and stats.acked_seq["samples"] == 105
    assert stats.unsynced["samples"] == 0 and buf.read_unsynced("samples", 10) == []
    buf.close()


def test_tail_survives_restart_and_ack_refuses_a_range_that_would_skip_rows(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = Buffer(path)
    buf.append(samples(100))
    buf.ack("samples", 100, first_seq=81)
    with pytest.raises(ValueError, match="touches neither"):
        buf.ack("samples", 60, first_seq=41)
    buf.close()
    buf = Buffer(path)
    assert buf.stats().live_tail["samples"] == [81, 100]
    assert buf.backlog()["samples"] == 80
    assert buf.read_unsynced("samples", 1000)[-1][0] == 80
    buf.close()


def test_synced_tail_rows_are_pruned_and_unsynced_backlog_dropped_first(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite", max_rows=100)
    buf.append(samples(100))
    buf.ack("samples", 100, first_seq=91)
    result = buf.append(samples(15, start=100))
    assert result.pruned_synced == 10 and result.dropped_oldest == 5
    assert [r[0] for r in buf.read_unsynced("samples", 1000)][:2] == [6, 7]
    buf.close()


def test_quarantine_keeps_the_batch_and_moves_past_it(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append(samples(10))
    buf.quarantine(QuarantineRecord("gw:samples:1:5", "samples", 1, 5, 5, 422, "bad row", 1.0, b"body"))
    assert [r[0] for r in buf.read_unsynced("samples", 100)] == [6, 7, 8, 9, 10]
    assert buf.stats().quarantined == {"batches": 1, "rows": 5}
    row = buf.conn.execute("SELECT batch_id, status, answer, body FROM quarantine").fetchone()
    assert row == ("gw:samples:1:5", 422, "bad row", b"body")
    buf.close()


# -- corruption and write failures --------------------------------------------------------------


def test_not_a_database_is_moved_aside_and_a_fresh_buffer_starts(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    buf = Buffer(path)
    assert buf.moved_aside is not None
    assert buf.moved_aside.moved_to.name.startswith("b.sqlite.corrupt-")
    assert buf.moved_aside.moved_to.read_bytes() == b"this is not sqlite" * 100
    buf.append(samples(3))
    assert buf.stats().samples_rows == 3
    buf.close()


def test_damaged_pages_are_found_by_quick_check_and_moved_aside_with_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = Buffer(path)
    buf.append(samples(20_000))
    buf.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    buf.close()
    with path.open("r+b") as f:  # scribble over a few pages in the middle of the table
        f.seek(path.stat().st_size // 2)
        f.write(b"\xff" * 3 * 4096)
    fresh = Buffer(path)
    assert fresh.moved_aside is not None and fresh.moved_aside.problem
    assert fresh.stats().samples_rows == 0
    assert list(tmp_path.glob("b.sqlite.corrupt-*"))
    fresh.close()


def test_disk_full_and_read_only_are_classified_and_commit_nothing(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append(samples(10))
    pages = buf.conn.execute("PRAGMA page_count").fetchone()[0]
    buf.conn.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(BufferFault, match="disk full") as info:
        buf.append(samples(50_000, start=10))
    assert info.value.kind == "disk_full"
    assert buf.stats().samples_rows == 10 and buf.backlog()["samples"] == 10
    buf.conn.execute("PRAGMA max_page_count=1073741823")
    buf.conn.execute("PRAGMA query_only=1")
    with pytest.raises(BufferFault, match="read-only") as info:
        buf.append(samples(5, start=10))
    assert info.value.kind == "read_only"
    buf.conn.execute("PRAGMA query_only=0")
    buf.append(samples(5, start=10))
    assert [r[0] for r in buf.read_unsynced("samples", 100)] == list(range(1, 16))
    buf.close()


def test_latest_samples_rebuild_the_model_types(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append([Sample("d", "t", 1.0, 1.5), Sample("d", "t", 2.0, 2.5, Quality.UNCERTAIN), Sample("e", "u", 1.0, 7)])
    latest = {(s.device, s.tag): s for s in buf.latest_samples()}
    assert latest[("d", "t")] == Sample("d", "t", 2.0, 2.5, Quality.UNCERTAIN)
    assert isinstance(latest[("e", "u")].quality, Quality)
    buf.close()


def test_samples_since_pages_from_the_first_row_at_that_time(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    rows = [Sample("d" if i % 3 else "e", "t", 1000.0 + i, float(i)) for i in range(100)]
    buf.append(rows)
    got: list[Sample] = []
    seq = 0
    while True:
        page, last = buf.samples_since(1040.0, ["d"], seq, limit=7)
        if last == seq:
            break
        got.extend(page)
        seq = last
    assert got == [r for r in rows if r.device == "d" and r.ts >= 1040.0]
    assert buf.samples_since(5000.0, ["d"]) == ([], 0), "nothing at or after that time"
    assert buf.samples_since(0.0, [])[0] == []
    buf.close()


def test_overflow_reporter_aggregates_drops_into_few_events() -> None:
    reporter = OverflowReporter("drop_oldest", max_rows=100, max_bytes=65536, interval_s=60.0)
    first = reporter.add(10, 0, now=1000.0)
    assert first is not None and first.kind == "buffer_overflow" and first.attributes["dropped_oldest"] == 10
    assert all(reporter.add(5, 0, now=1000.0 + i) is None for i in range(1, 50))  # within the interval: counted
    assert reporter.flush(now=1030.0) is None
    second = reporter.flush(now=1061.0)
    assert second is not None and second.attributes["dropped_oldest"] == 49 * 5
    assert second.attributes["total_dropped_oldest"] == 10 + 49 * 5 and second.attributes["since"] == 1001.0
    assert reporter.flush(now=1062.0) is None  # nothing pending
    assert reporter.add(0, 3, now=1063.0) is None
    last = reporter.flush(now=1063.5, force=True)  # shutdown: whatever is pending
    assert last is not None and last.attributes["dropped_newest"] == 3


def test_delivery_marks_commit_with_the_samples_and_survive_reopen(tmp_path: Path) -> None:
    buf = Buffer(tmp_path / "b.sqlite")
    buf.append(samples(2), marks=[("client-a", 1, "aa"), ("client-a", 2, "bb"), ("client-b", 1, "cc")])
    buf.append(samples(1), marks=[("client-a", 1, "dd")])  # packet id reused: the newest message wins
    buf.close()
    buf = Buffer(tmp_path / "b.sqlite")
    assert buf.delivery_marks("client-a") == {1: "dd", 2: "bb"}
    assert buf.delivery_marks("client-b") == {1: "cc"}
    assert buf.delivery_marks("nobody") == {}
    buf.close()
