"""The SQLite buffer: transactions, sequence numbers, sync marks, bounds and drops, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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
    assert rows[3] == [4, "d", "s", 1.0, "text", 0]
    assert rows[4] == [5, "d", "b", 2.0, 1, 2]
    assert buf.read_unsynced("events", 10) == [[1, "e1", 5.0, "d", "started", {"a": 1}]]
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


def test_migrations_recorded_and_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buf = Buffer(path)
    names = [r[0] for r in buf.conn.execute("SELECT name FROM _migrations")]
    assert names == [name for name, _ in MIGRATIONS]
    buf.conn.execute("INSERT INTO _migrations VALUES ('9999_from_the_future', 0)")
    buf.close()
    with pytest.raises(StoreError, match="newer version"):
        Buffer(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open buffer"):
        Buffer(path)


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
