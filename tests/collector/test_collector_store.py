"""The stores: exactly-once ingest, one transaction per batch, counters, migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from collector_testkit import Backend, SQLiteBackend, batch_dict, make_batch, sample_rows

from cloud_sync.collector.migrations import MIGRATIONS, Dialect, render
from cloud_sync.collector.store import (
    SampleQuery,
    Store,
    StoreError,
    UnsupportedBackend,
    display_url,
    is_postgres_url,
    open_store,
    sqlite_path,
)
from cloud_sync.schema import Batch


def counts(store: Store, gateway: str = "gw1") -> dict[str, int]:
    return store.stats()["gateways"][gateway]


def as_json(value: Any) -> Any:
    """A JSON column as Python: SQLite gives text, PostgreSQL (JSONB) the value."""
    return orjson.loads(value) if isinstance(value, str) else value


def counters_match_tables(backend: Backend) -> None:
    """The per-gateway counters equal what the tables hold."""
    counters = backend.query("SELECT gateway_id, samples, events, batches FROM gateways ORDER BY gateway_id")
    for gw, samples, events, batches in counters:
        assert backend.query("SELECT COUNT(*) FROM samples WHERE gateway_id = ?", gw)[0][0] == samples
        assert backend.query("SELECT COUNT(*) FROM events WHERE gateway_id = ?", gw)[0][0] == events
        assert backend.query("SELECT COUNT(*) FROM batches WHERE gateway_id = ?", gw)[0][0] == batches


def test_stores_implement_the_interface(store: Store) -> None:
    assert isinstance(store, Store)


def test_good_batch_is_committed(store: Store, backend: Backend) -> None:
    ack = store.ingest(make_batch(first=1, last=10))
    assert ack.model_dump() == {
        "batch_id": "gw1:samples:1:10",
        "accepted": 10,
        "duplicates": 0,
        "duplicate_batch": False,
    }
    q = "SELECT COUNT(*), MIN(seq), MAX(seq) FROM samples WHERE gateway_id='gw1'"
    assert backend.query(q) == [(10, 1, 10)]
    assert backend.query('SELECT batch_id, gateway_id, stream, first_seq, last_seq, "rows" FROM batches') == [
        ("gw1:samples:1:10", "gw1", "samples", 1, 10, 10)
    ]
    gw = backend.query("SELECT last_batch_id, backlog, duplicate_batches FROM gateways")
    assert gw == [("gw1:samples:1:10", '{"samples":5,"events":0}', 0)]


def test_resent_batch_commits_nothing_and_counts_one_duplicate(store: Store, backend: Backend) -> None:
    store.ingest(make_batch(first=1, last=10))
    ack = store.ingest(make_batch(first=1, last=10))
    assert ack.duplicate_batch is True
    assert (ack.accepted, ack.duplicates) == (0, 10)
    assert counts(store) == {"samples": 10, "events": 0, "batches": 1, "duplicate_batches": 1}
    assert backend.query("SELECT COUNT(*) FROM batches") == [(1,)]


def test_overlapping_batch_stores_only_new_rows(store: Store, backend: Backend) -> None:
    store.ingest(make_batch(first=1, last=10))
    ack = store.ingest(make_batch(first=6, last=15))
    assert (ack.accepted, ack.duplicates, ack.duplicate_batch) == (5, 5, False)
    assert counts(store) == {"samples": 15, "events": 0, "batches": 2, "duplicate_batches": 0}
    assert backend.query("SELECT COUNT(DISTINCT seq) FROM samples") == [(15,)]
    # the rows already stored were not overwritten by the overlapping batch
    assert backend.query("SELECT device FROM samples WHERE seq = 6") == [("pump-1",)]
    counters_match_tables(backend)


def test_values_keep_their_type(store: Store) -> None:
    rows = [
        [1, "d", "float", 1.0, 2.5, 0],
        [2, "d", "int", 2.0, 7, 0],
        [3, "d", "text", 3.0, "open", 1],
        [4, "d", "bool", 4.0, True, 0],
        [5, "d", "null", 5.0, None, 2],
        [6, "d", "big", 6, 2**62 + 1, 2**40],
        [7, "d", "whole", 7.0, 7.0, 0],
    ]
    store.ingest(make_batch(first=1, last=7, rows=rows))
    got = {s["tag"]: s["value"] for s in store.samples(SampleQuery(limit=10_000))}
    true_value = 1 if store.__class__.__name__ == "SQLiteStore" else True  # SQLite has no boolean
    assert got == {
        "float": 2.5,
        "int": 7,
        "text": "open",
        "bool": true_value,
        "null": None,
        "big": 2**62 + 1,
        "whole": 7.0,
    }
    assert type(got["int"]) is int
    assert type(got["whole"]) is float
    assert type(got["big"]) is int


def test_sqlite_columns_keep_their_storage_class(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "c.db")
    store = backend.open()
    rows = [[1, "d", "float", 1.0, 2.5, 0], [2, "d", "int", 2, 7, 0], [3, "d", "bool", 3.0, True, 0]]
    store.ingest(make_batch(first=1, last=3, rows=rows))
    store.close()
    got = backend.query("SELECT tag, value, typeof(value), typeof(ts) FROM samples ORDER BY seq")
    assert got == [("float", 2.5, "real", "real"), ("int", 7, "integer", "real"), ("bool", 1, "integer", "real")]


def test_events_are_stored_with_json_attributes(store: Store, backend: Backend) -> None:
    ack = store.ingest(make_batch(stream="events", first=1, last=3))
    assert (ack.accepted, ack.batch_id) == (3, "gw1:events:1:3")
    rows = backend.query("SELECT seq, event_id, device, kind, attributes FROM events ORDER BY seq")
    assert [r[:4] for r in rows] == [(s, f"ev-{s}", "pump-1", "alarm") for s in (1, 2, 3)]
    assert as_json(rows[0][4]) == {"limit": 80.5, "tags": ["a", "b"]}
    assert counts(store) == {"samples": 0, "events": 3, "batches": 1, "duplicate_batches": 0}


def test_streams_and_gateways_have_separate_sequences(store: Store) -> None:
    store.ingest(make_batch(gateway="gw1", first=1, last=4))
    store.ingest(make_batch(gateway="gw1", stream="events", first=1, last=2))
    store.ingest(make_batch(gateway="gw2", first=1, last=3))
    assert store.stats() == {
        "gateways": {
            "gw1": {"samples": 4, "events": 2, "batches": 2, "duplicate_batches": 0},
            "gw2": {"samples": 3, "events": 0, "batches": 1, "duplicate_batches": 0},
        }
    }


def test_stats_of_an_empty_store(store: Store) -> None:
    assert store.stats() == {"gateways": {}}


def test_empty_batch_is_recorded(store: Store) -> None:
    ack = store.ingest(make_batch(first=5, last=9, rows=[]))
    assert (ack.accepted, ack.duplicates, ack.duplicate_batch) == (0, 0, False)
    assert counts(store) == {"samples": 0, "events": 0, "batches": 1, "duplicate_batches": 0}


def unstorable_rows(backend: Backend) -> list[list[Any]]:
    """Ten rows valid for the schema model, of which the eighth the database refuses."""
    rows = sample_rows(1, 10)
    if backend.name == "sqlite":
        rows[7][4] = {"not": "bindable"}
    else:
        rows[7][1] = "nul\x00device"  # PostgreSQL text cannot hold NUL
    return rows


def test_failed_ingest_commits_nothing(store: Store, backend: Backend) -> None:
    bad = Batch.model_validate(batch_dict(first=1, last=10, rows=unstorable_rows(backend)))
    with pytest.raises(StoreError):
        store.ingest(bad)
    assert set(backend.row_counts().values()) == {0}
    # the batch id was not recorded, so the corrected batch is not taken for a duplicate
    ack = store.ingest(make_batch(first=1, last=10))
    assert (ack.accepted, ack.duplicate_batch) == (10, False)


def test_failed_ingest_of_an_overlapping_batch_commits_nothing(store: Store, backend: Backend) -> None:
    store.ingest(make_batch(first=1, last=5))
    before = backend.row_counts()
    bad = Batch.model_validate(batch_dict(first=1, last=10, rows=unstorable_rows(backend)))
    with pytest.raises(StoreError):
        store.ingest(bad)
    assert backend.row_counts() == before
    assert counts(store) == {"samples": 5, "events": 0, "batches": 1, "duplicate_batches": 0}


def test_reopened_database_keeps_data_and_idempotency(backend: Backend) -> None:
    first = backend.open()
    first.ingest(make_batch(first=1, last=10))
    first.close()

    again = backend.open()
    try:
        assert counts(again) == {"samples": 10, "events": 0, "batches": 1, "duplicate_batches": 0}
        assert again.ingest(make_batch(first=1, last=10)).duplicate_batch is True
        assert again.ingest(make_batch(first=5, last=12)).accepted == 2
    finally:
        again.close()
    applied = backend.query("SELECT name FROM migrations ORDER BY name")
    assert applied == [(name,) for name, _ in MIGRATIONS]


def test_sqlite_database_is_in_wal_mode(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "c.db")
    backend.open().close()
    assert backend.query("PRAGMA journal_mode") == [("wal",)]


def test_database_from_a_newer_collector_is_refused(fresh_backend: Backend) -> None:
    fresh_backend.open().close()
    fresh_backend.execute("INSERT INTO migrations VALUES ('9999_future', 0)")
    with pytest.raises(StoreError, match="9999_future"):
        fresh_backend.open()


def test_upgrade_from_the_first_schema_counts_existing_rows(fresh_backend: Backend) -> None:
    """A database made by the first collector (migration 0001 only) gets its counters filled in."""
    dialect: Dialect = "sqlite" if fresh_backend.name == "sqlite" else "postgresql"
    fresh_backend.execute(
        render("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at {real} NOT NULL)", dialect)
    )
    for sql in MIGRATIONS[0][1]:
        fresh_backend.execute(render(sql, dialect))
    fresh_backend.execute("INSERT INTO migrations VALUES ('0001_initial', 0)")
    fresh_backend.execute("INSERT INTO batches VALUES ('gw1:samples:1:2', 'gw1', 'samples', 1, 2, 2, 0)")
    for seq in (1, 2):
        fresh_backend.execute("INSERT INTO samples VALUES ('gw1', ?, 'd', 't', 1.0, NULL, 0)", seq)
    fresh_backend.execute("INSERT INTO gateways VALUES ('gw1', 0, 0, 'gw1:samples:1:2', '{}', 3)")

    store = fresh_backend.open()
    try:
        assert counts(store) == {"samples": 2, "events": 0, "batches": 1, "duplicate_batches": 3}
        assert store.ingest(make_batch(first=1, last=4)).accepted == 2
        assert counts(store)["samples"] == 4
    finally:
        store.close()


def test_concurrent_opens_apply_each_migration_once(fresh_backend: Backend) -> None:
    errors: list[BaseException] = []

    def open_close() -> None:
        try:
            fresh_backend.open().close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fresh_backend.query("SELECT COUNT(*) FROM migrations") == [(len(MIGRATIONS),)]


def test_concurrent_ingest_from_threads(store: Store, backend: Backend) -> None:
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
    counters_match_tables(backend)


def test_same_rows_from_racing_threads_are_stored_once(store: Store, backend: Backend) -> None:
    """Overlapping batches of one gateway, committed concurrently: every row once, counters exact."""
    errors: list[BaseException] = []
    acks: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def send(offset: int) -> None:
        try:
            barrier.wait()
            for start in range(1 + offset, 400, 40):
                ack = store.ingest(make_batch(first=start, last=start + 59))
                with lock:
                    acks.append(ack.accepted)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(offset,)) for offset in (0, 10, 20, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = backend.query("SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM samples")
    assert stored == [(sum(acks), sum(acks), 1, stored[0][3])]
    counters_match_tables(backend)


def test_closed_store_raises_store_error(store: Store) -> None:
    store.ping()
    store.close()
    store.close()  # idempotent
    for call in (store.ping, store.stats, store.gateways, store.list_keys, lambda: store.ingest(make_batch())):
        with pytest.raises(StoreError, match="closed"):
            call()


def test_database_urls(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///data/c.db") == Path("data/c.db")
    assert sqlite_path("sqlite:////var/lib/c.db") == Path("/var/lib/c.db")
    for bad in ("mysql://x", "sqlite://c.db", "sqlite:///", "sqlite:///:memory:", "/tmp/c.db"):
        with pytest.raises(UnsupportedBackend):
            sqlite_path(bad)
    assert is_postgres_url("postgresql://u@h/db") and is_postgres_url("postgres://u@h/db")
    assert not is_postgres_url("sqlite:///c.db")
    assert display_url("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert display_url("postgresql://u@h/db") == "postgresql://u@h/db"
    nested = tmp_path / "a" / "b" / "c.db"
    s = open_store(f"sqlite:///{nested}")
    s.close()
    assert nested.is_file()


def test_unreachable_postgresql_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot prepare"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


def test_postgresql_falls_back_when_rows_appear_after_the_check(pg_shared: Backend) -> None:
    """Rows stored by another process between the range check and the COPY: only the new ones are added."""
    from cloud_sync.collector.pg_store import PostgresStore

    class RacingStore(PostgresStore):
        def _range_stored(self, cur: Any, table: str, batch: Batch) -> bool:
            return False  # as if the overlapping rows were committed right after the check

    pg_shared.execute("TRUNCATE batches, samples, events, gateways, api_keys")
    store = RacingStore(pg_shared.url)
    try:
        store.ingest(make_batch(first=1, last=10))
        ack = store.ingest(make_batch(first=6, last=15))
        assert (ack.accepted, ack.duplicates) == (5, 5)
        events = store.ingest(make_batch(stream="events", first=1, last=3))
        assert store.ingest(make_batch(stream="events", first=2, last=4)).accepted == 1
        assert events.accepted == 3
        assert counts(store) == {"samples": 15, "events": 4, "batches": 4, "duplicate_batches": 0}
    finally:
        store.close()
    counters_match_tables(pg_shared)
