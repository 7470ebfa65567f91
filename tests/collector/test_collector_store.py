"""The SQLite store: exactly-once ingest, one transaction per batch, durable across reopen."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from collector_testkit import batch_dict, make_batch, sample_rows

from cloud_sync.collector.store import (
    MIGRATIONS,
    SQLiteStore,
    Store,
    StoreError,
    UnsupportedBackend,
    open_store,
    sqlite_path,
)
from cloud_sync.schema import Batch


def query(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the file with an independent connection: what is there is committed."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def counts(store: Store, gateway: str = "gw1") -> dict[str, int]:
    return store.stats()["gateways"][gateway]


def test_sqlite_store_implements_the_interface(store: SQLiteStore) -> None:
    assert isinstance(store, Store)


def test_good_batch_is_committed(store: SQLiteStore, db_path: Path) -> None:
    ack = store.ingest(make_batch(first=1, last=10))
    assert ack.model_dump() == {
        "batch_id": "gw1:samples:1:10",
        "accepted": 10,
        "duplicates": 0,
        "duplicate_batch": False,
    }
    assert query(db_path, "SELECT COUNT(*), MIN(seq), MAX(seq) FROM samples WHERE gateway_id='gw1'") == [(10, 1, 10)]
    assert query(db_path, 'SELECT batch_id, gateway_id, stream, first_seq, last_seq, "rows" FROM batches') == [
        ("gw1:samples:1:10", "gw1", "samples", 1, 10, 10)
    ]
    gw = query(db_path, "SELECT last_batch_id, backlog, duplicate_batches FROM gateways")
    assert gw == [("gw1:samples:1:10", '{"samples":5,"events":0}', 0)]


def test_resent_batch_commits_nothing_and_counts_one_duplicate(store: SQLiteStore, db_path: Path) -> None:
    store.ingest(make_batch(first=1, last=10))
    ack = store.ingest(make_batch(first=1, last=10))
    assert ack.duplicate_batch is True
    assert (ack.accepted, ack.duplicates) == (0, 10)
    assert counts(store) == {"samples": 10, "events": 0, "batches": 1, "duplicate_batches": 1}
    assert query(db_path, "SELECT COUNT(*) FROM batches") == [(1,)]


def test_overlapping_batch_stores_only_new_rows(store: SQLiteStore, db_path: Path) -> None:
    store.ingest(make_batch(first=1, last=10))
    ack = store.ingest(make_batch(first=6, last=15))
    assert (ack.accepted, ack.duplicates, ack.duplicate_batch) == (5, 5, False)
    assert counts(store) == {"samples": 15, "events": 0, "batches": 2, "duplicate_batches": 0}
    # the rows already stored were not overwritten by the overlapping batch
    assert query(db_path, "SELECT COUNT(DISTINCT seq) FROM samples") == [(15,)]


def test_values_keep_their_type(store: SQLiteStore, db_path: Path) -> None:
    rows = [
        [1, "d", "float", 1.0, 2.5, 0],
        [2, "d", "int", 2.0, 7, 0],
        [3, "d", "text", 3.0, "open", 1],
        [4, "d", "bool", 4.0, True, 0],
        [5, "d", "null", 5.0, None, 2],
    ]
    store.ingest(make_batch(first=1, last=5, rows=rows))
    got = query(db_path, "SELECT tag, value, typeof(value), typeof(ts), quality FROM samples ORDER BY seq")
    assert got == [
        ("float", 2.5, "real", "real", 0),
        ("int", 7, "integer", "real", 0),
        ("text", "open", "text", "real", 1),
        ("bool", 1, "integer", "real", 0),
        ("null", None, "null", "real", 2),
    ]


def test_events_are_stored_with_json_attributes(store: SQLiteStore, db_path: Path) -> None:
    ack = store.ingest(make_batch(stream="events", first=1, last=3))
    assert (ack.accepted, ack.batch_id) == (3, "gw1:events:1:3")
    rows = query(db_path, "SELECT seq, event_id, device, kind, attributes FROM events ORDER BY seq")
    assert [r[:4] for r in rows] == [(s, f"ev-{s}", "pump-1", "alarm") for s in (1, 2, 3)]
    assert orjson.loads(rows[0][4]) == {"limit": 80.5, "tags": ["a", "b"]}
    assert counts(store) == {"samples": 0, "events": 3, "batches": 1, "duplicate_batches": 0}


def test_streams_and_gateways_have_separate_sequences(store: SQLiteStore) -> None:
    store.ingest(make_batch(gateway="gw1", first=1, last=4))
    store.ingest(make_batch(gateway="gw1", stream="events", first=1, last=2))
    store.ingest(make_batch(gateway="gw2", first=1, last=3))
    assert store.stats() == {
        "gateways": {
            "gw1": {"samples": 4, "events": 2, "batches": 2, "duplicate_batches": 0},
            "gw2": {"samples": 3, "events": 0, "batches": 1, "duplicate_batches": 0},
        }
    }


def test_stats_of_an_empty_store(store: SQLiteStore) -> None:
    assert store.stats() == {"gateways": {}}


def test_failed_ingest_commits_nothing(store: SQLiteStore, db_path: Path) -> None:
    rows = sample_rows(1, 10)
    rows[7][4] = {"not": "bindable"}  # valid for the schema model, refused by SQLite mid-batch
    bad = Batch.model_validate(batch_dict(first=1, last=10, rows=rows))
    with pytest.raises(StoreError):
        store.ingest(bad)
    assert query(db_path, "SELECT COUNT(*) FROM samples") == [(0,)]
    assert query(db_path, "SELECT COUNT(*) FROM batches") == [(0,)]
    # the batch id was not recorded, so the corrected batch is not taken for a duplicate
    ack = store.ingest(make_batch(first=1, last=10))
    assert (ack.accepted, ack.duplicate_batch) == (10, False)


def test_reopened_file_keeps_data_and_idempotency(db_path: Path) -> None:
    first = SQLiteStore(db_path)
    first.ingest(make_batch(first=1, last=10))
    first.close()

    again = SQLiteStore(db_path)
    try:
        assert counts(again) == {"samples": 10, "events": 0, "batches": 1, "duplicate_batches": 0}
        assert again.ingest(make_batch(first=1, last=10)).duplicate_batch is True
        assert again.ingest(make_batch(first=5, last=12)).accepted == 2
    finally:
        again.close()
    applied = query(db_path, "SELECT name FROM migrations ORDER BY name")
    assert applied == [(name,) for name, _ in MIGRATIONS]


def test_database_is_in_wal_mode(store: SQLiteStore, db_path: Path) -> None:
    assert query(db_path, "PRAGMA journal_mode") == [("wal",)]


def test_database_from_a_newer_collector_is_refused(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO migrations VALUES ('9999_future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="9999_future"):
        SQLiteStore(db_path)


def test_concurrent_ingest_from_threads(store: SQLiteStore) -> None:
    errors: list[BaseException] = []

    def send(gateway: str) -> None:
        try:
            for start in range(1, 200, 20):
                # every batch twice, and every batch overlapping the previous one
                batch = make_batch(gateway=gateway, first=max(1, start - 5), last=start + 19)
                store.ingest(batch)
                store.ingest(batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(f"gw{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stats = store.stats()["gateways"]
    assert stats == {f"gw{i}": {"samples": 200, "events": 0, "batches": 10, "duplicate_batches": 10} for i in range(4)}


def test_closed_store_raises_store_error(store: SQLiteStore) -> None:
    store.ping()
    store.close()
    store.close()  # idempotent
    for call in (store.ping, store.stats, lambda: store.ingest(make_batch())):
        with pytest.raises(StoreError, match="closed"):
            call()


def test_database_urls(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///data/c.db") == Path("data/c.db")
    assert sqlite_path("sqlite:////var/lib/c.db") == Path("/var/lib/c.db")
    with pytest.raises(UnsupportedBackend, match="not supported yet"):
        sqlite_path("postgresql://user@db/collector")
    for bad in ("mysql://x", "sqlite://c.db", "sqlite:///", "sqlite:///:memory:", "/tmp/c.db"):
        with pytest.raises(UnsupportedBackend):
            sqlite_path(bad)
    nested = tmp_path / "a" / "b" / "c.db"
    s = open_store(f"sqlite:///{nested}")
    s.close()
    assert nested.is_file()
