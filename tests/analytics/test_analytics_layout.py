"""The tables the analytics tests create have the layout of the collector's own (its migrations)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from analytics_testkit import SQLiteDb

from cloud_sync.collector.migrations import migrations_for

READ_FROM_GATEWAYS = ("gateway_id", "last_seen", "backlog")


def columns(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, int, int]]:
    return {row[1]: (row[2], row[3], row[5]) for row in conn.execute(f"PRAGMA table_info({table})")}


def test_same_layout_as_the_collector(tmp_path: Path) -> None:
    collector = sqlite3.connect(tmp_path / "collector.db")
    for _, statements in migrations_for("sqlite"):
        for sql in statements:
            collector.execute(sql)
    ours = SQLiteDb(tmp_path / "analytics.db")
    assert columns(ours.conn, "events") == columns(collector, "events")
    theirs = columns(collector, "gateways")
    assert {c: columns(ours.conn, "gateways")[c] for c in READ_FROM_GATEWAYS} == {
        c: theirs[c] for c in READ_FROM_GATEWAYS
    }
    ours.close()
    collector.close()
