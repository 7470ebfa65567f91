"""Named, transactional schema migrations of the buffer, recorded in ``_migrations``."""

from __future__ import annotations

import sqlite3
import time

from edge_agent.errors import StoreError

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE samples (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            device TEXT NOT NULL,
            tag TEXT NOT NULL,
            ts REAL NOT NULL,
            value,
            quality INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            ts REAL NOT NULL,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            attributes TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE sync_state (
            stream TEXT PRIMARY KEY,
            acked_seq INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO sync_state (stream, acked_seq) VALUES ('samples', 0), ('events', 0);
        CREATE TABLE counters (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL DEFAULT 0
        );
        """,
    ),
]


def applied(conn: sqlite3.Connection) -> list[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every pending migration, each in its own transaction; returns the names applied.

    A buffer written by a newer agent (unknown migrations) is refused rather than touched.
    """
    done = applied(conn)
    known = [name for name, _ in MIGRATIONS]
    unknown = [name for name in done if name not in known]
    if unknown:
        raise StoreError(
            f"buffer schema has migrations this agent does not know ({', '.join(unknown)}): "
            "it was written by a newer version; upgrade the agent or move the buffer aside"
        )
    ran = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        ran.append(name)
    return ran
