"""Databases with the collector's ``events`` and ``gateways`` tables, and event builders, for the analytics tests."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from cloud_sync.analytics.overview import GatewayRecord
from cloud_sync.analytics.records import StoredEvent
from cloud_sync.analytics.sql import Dialect

PG_URL = os.environ.get("EDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_763_510_400.0
"""2025-11-19T00:00:00Z, a Wednesday."""

_DDL = {
    # The layout of the collector's tables (cloud_sync/collector/migrations.py); test_layout checks it stays so.
    "sqlite": (
        "CREATE TABLE events (gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL, "
        "ts REAL NOT NULL, device TEXT NOT NULL, kind TEXT NOT NULL, attributes TEXT NOT NULL, "
        "PRIMARY KEY (gateway_id, seq)) WITHOUT ROWID",
        "CREATE INDEX events_ts ON events (ts)",
        "CREATE TABLE gateways (gateway_id TEXT PRIMARY KEY, first_seen REAL NOT NULL, last_seen REAL NOT NULL, "
        "last_batch_id TEXT, backlog TEXT NOT NULL DEFAULT '{}', duplicate_batches INTEGER NOT NULL DEFAULT 0)",
    ),
    "postgresql": (
        "CREATE TABLE events (gateway_id TEXT NOT NULL, seq BIGINT NOT NULL, event_id TEXT NOT NULL, "
        "ts DOUBLE PRECISION NOT NULL, device TEXT NOT NULL, kind TEXT NOT NULL, attributes JSONB NOT NULL, "
        "PRIMARY KEY (gateway_id, seq))",
        "CREATE INDEX events_ts ON events (ts)",
        "CREATE TABLE gateways (gateway_id TEXT PRIMARY KEY, first_seen DOUBLE PRECISION NOT NULL, "
        "last_seen DOUBLE PRECISION NOT NULL, last_batch_id TEXT, backlog TEXT NOT NULL DEFAULT '{}', "
        "duplicate_batches BIGINT NOT NULL DEFAULT 0)",
    ),
}


def ev(
    kind: str,
    ts: float,
    device: str = "cnc-1",
    gateway: str = "gw1",
    event_id: str | None = None,
    **attributes: Any,
) -> StoredEvent:
    """An event ``ts`` seconds after :data:`T0` (ids default to a random hex)."""
    return StoredEvent(gateway, event_id or secrets.token_hex(8), T0 + ts, device, kind, attributes)


class Db:
    """One empty database with the collector's tables; ``conn`` is in autocommit mode."""

    dialect: Dialect
    conn: Any

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        cur = self.conn.cursor()
        cur.execute(sql, params)

    def _placeholders(self, n: int) -> str:
        return ", ".join(["?" if self.dialect == "sqlite" else "%s"] * n)

    def load(self, events: Iterable[StoredEvent]) -> None:
        """Store ``events``, numbered per gateway in the given order (so arrival order is kept)."""
        seqs: dict[str, int] = {}
        rows = []
        for e in events:
            seqs[e.gateway_id] = seqs.get(e.gateway_id, 0) + 1
            attrs = orjson.dumps(dict(e.attributes)).decode()
            rows.append((e.gateway_id, seqs[e.gateway_id], e.event_id, e.ts, e.device, e.kind, attrs))
        sql = (
            "INSERT INTO events (gateway_id, seq, event_id, ts, device, kind, attributes) "
            f"VALUES ({self._placeholders(7)})"
        )
        self._many(sql, rows)

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cur = self.conn.cursor()
        cur.execute("BEGIN")  # one transaction: an fsync per row would take seconds
        cur.executemany(sql, rows)
        cur.execute("COMMIT")

    def load_gateways(self, gateways: Iterable[GatewayRecord]) -> None:
        sql = f"INSERT INTO gateways (gateway_id, first_seen, last_seen, backlog) VALUES ({self._placeholders(4)})"
        rows = [(g.gateway_id, g.last_seen, g.last_seen, orjson.dumps(dict(g.backlog)).decode()) for g in gateways]
        self._many(sql, rows)

    def clear(self) -> None:
        self.execute("DELETE FROM events")
        self.execute("DELETE FROM gateways")

    def close(self) -> None:
        self.conn.close()


class SQLiteDb(Db):
    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for sql in _DDL["sqlite"]:
            self.conn.execute(sql)


class PostgresDb(Db):
    """A schema of its own on the test server, dropped by :meth:`close`."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str = PG_URL) -> None:
        import psycopg

        self.schema = f"analytics_test_{secrets.token_hex(4)}"
        self.conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        self.conn.execute(f"CREATE SCHEMA {self.schema}")
        self.conn.execute(f"SET search_path TO {self.schema}")
        for sql in _DDL["postgresql"]:
            self.conn.execute(sql)

    def close(self) -> None:
        self.conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.conn.close()


def profile(
    at: float,
    device: str,
    gateway: str = "gw1",
    *,
    period: str = "hour",
    run_s: float = 3600.0,
    planned_s: float = 3600.0,
    failures: int = 0,
    mttr_s: float | None = None,
    micro_stops: int = 0,
    availability: float | None = None,
    performance: float | None = None,
    quality: float | None = None,
    good: int = 0,
    scrap: int = 0,
    reasons: Sequence[tuple[str, int, float]] = (),
    location: tuple[str | None, str | None, str | None] = (None, None, None),
) -> StoredEvent:
    """A ``machine_profile`` event ending ``at`` seconds after :data:`T0`, valid for the catalogue."""
    from edge_agent.behaviour.attributes import MachineProfile, ParetoEntry

    total = sum(d for _, _, d in reasons)
    entries, cumulative = [], 0.0
    for reason, count, duration in reasons:
        cumulative += duration / total
        entries.append(
            ParetoEntry(
                reason=reason,
                count=count,
                duration_s=duration,
                share=duration / total,
                cumulative_share=min(cumulative, 1.0),
            )
        )
    attributes = MachineProfile(
        period=period,  # type: ignore[arg-type]
        period_start=T0 + at - 3600,
        period_end=T0 + at,
        site=location[0],
        area=location[1],
        line=location[2],
        run_s=run_s,
        planned_s=planned_s,
        unplanned_stop_s=planned_s - run_s,
        failures=failures,
        micro_stops=micro_stops,
        mtbf_s=run_s / failures if failures else None,
        mttr_s=mttr_s,
        micro_stops_per_h=micro_stops * 3600 / run_s if run_s else None,
        stop_reasons=entries,
        cycles=0,
        cycle_time_p50_s=None,
        cycle_time_p90_s=None,
        cycle_time_p99_s=None,
        good=good,
        scrap=scrap,
        availability=availability,
        performance=performance,
        quality=quality,
    ).model_dump(mode="json")
    return ev("machine_profile", at, device=device, gateway=gateway, **attributes)
