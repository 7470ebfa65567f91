"""The collector's schema: one list of named migrations for SQLite and PostgreSQL.

Each migration is written once; the few column types the two databases spell
differently are placeholders that :func:`render` fills in per dialect:

============== ==================== ====================
placeholder    SQLite               PostgreSQL
============== ==================== ====================
``{int}``      ``INTEGER``          ``BIGINT``
``{real}``     ``REAL``             ``DOUBLE PRECISION``
``{value}``    (no type: each value ``JSONB``
               keeps its own)
``{json}``     ``TEXT``             ``JSONB``
``{norowid}``  `` WITHOUT ROWID``   (nothing)
============== ==================== ====================

Migrations are applied in order, each in its own transaction, and recorded by
name in the ``migrations`` table. Never edit or reorder one that was released:
add another. The backends run them (:meth:`SQLiteStore._migrate`,
:func:`cloud_sync.collector.pg_store.migrate`); PostgreSQL holds an advisory
lock meanwhile so collectors starting together do not race.
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["sqlite", "postgresql"]

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"int": "INTEGER", "real": "REAL", "value": "", "json": "TEXT", "norowid": " WITHOUT ROWID"},
    "postgresql": {
        "int": "BIGINT",
        "real": "DOUBLE PRECISION",
        "value": "JSONB",
        "json": "JSONB",
        "norowid": "",
    },
}

CREATE_MIGRATIONS_TABLE = "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at {real} NOT NULL)"

MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "0001_initial",
        (
            """CREATE TABLE batches (
                batch_id TEXT NOT NULL UNIQUE,
                gateway_id TEXT NOT NULL,
                stream TEXT NOT NULL,
                first_seq {int} NOT NULL,
                last_seq {int} NOT NULL,
                "rows" {int} NOT NULL,
                received_at {real} NOT NULL
            )""",
            "CREATE INDEX batches_gateway ON batches (gateway_id)",
            # ``value`` keeps each value's type: untyped in SQLite (integer, real, text;
            # booleans become 0/1), JSONB in PostgreSQL. The primary key is the
            # (gateway_id, seq) uniqueness; in SQLite, WITHOUT ROWID keeps it as the only
            # b-tree, which is roughly 1.5x faster to fill.
            """CREATE TABLE samples (
                gateway_id TEXT NOT NULL,
                seq {int} NOT NULL,
                device TEXT NOT NULL,
                tag TEXT NOT NULL,
                ts {real} NOT NULL,
                value {value},
                quality {int} NOT NULL,
                PRIMARY KEY (gateway_id, seq)
            ){norowid}""",
            """CREATE TABLE events (
                gateway_id TEXT NOT NULL,
                seq {int} NOT NULL,
                event_id TEXT NOT NULL,
                ts {real} NOT NULL,
                device TEXT NOT NULL,
                kind TEXT NOT NULL,
                attributes {json} NOT NULL,
                PRIMARY KEY (gateway_id, seq)
            ){norowid}""",
            """CREATE TABLE gateways (
                gateway_id TEXT PRIMARY KEY,
                first_seen {real} NOT NULL,
                last_seen {real} NOT NULL,
                last_batch_id TEXT,
                backlog TEXT NOT NULL DEFAULT '{{}}',
                duplicate_batches {int} NOT NULL DEFAULT 0
            )""",
        ),
    ),
    (
        # Per-gateway counters kept in the same transaction as the rows they count,
        # so /api/v1/stats reads one small table instead of counting millions of rows.
        "0002_gateway_counters",
        (
            "ALTER TABLE gateways ADD COLUMN samples {int} NOT NULL DEFAULT 0",
            "ALTER TABLE gateways ADD COLUMN events {int} NOT NULL DEFAULT 0",
            "ALTER TABLE gateways ADD COLUMN batches {int} NOT NULL DEFAULT 0",
            """UPDATE gateways SET
                samples = (SELECT COUNT(*) FROM samples s WHERE s.gateway_id = gateways.gateway_id),
                events = (SELECT COUNT(*) FROM events e WHERE e.gateway_id = gateways.gateway_id),
                batches = (SELECT COUNT(*) FROM batches b WHERE b.gateway_id = gateways.gateway_id)""",
        ),
    ),
    (
        # API keys per gateway; only a salted SHA-256 digest of the secret is stored.
        "0003_api_keys",
        (
            """CREATE TABLE api_keys (
                key_id TEXT PRIMARY KEY,
                gateway_id TEXT NOT NULL,
                salt TEXT NOT NULL,
                digest TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                created_at {real} NOT NULL,
                revoked_at {real}
            )""",
            "CREATE INDEX api_keys_gateway ON api_keys (gateway_id)",
        ),
    ),
    (
        # Time-ordered queries. Only ``ts``: rows arrive roughly in time order, so this
        # index is appended to; an index per series (device, tag, ts) would cost about
        # a third of the ingest rate.
        "0004_query_indexes",
        (
            "CREATE INDEX samples_ts ON samples (ts)",
            "CREATE INDEX events_ts ON events (ts)",
        ),
    ),
    (
        # The latest twin of every device of every gateway, kept at ingest in the batch's
        # transaction (cloud_sync.collector.twin): one row per device, one per reported tag
        # and one per derived figure (state, connection, OEE, health, alarms), each with the
        # instant of its value, so that an older value arriving late never replaces a newer one.
        # ``events_kind_ts`` serves the queries by kind (fleet OEE, exports of one kind).
        "0005_device_twins",
        (
            """CREATE TABLE device_twins (
                gateway_id TEXT NOT NULL,
                device TEXT NOT NULL,
                last_seen {real} NOT NULL,
                updated_at {real} NOT NULL,
                PRIMARY KEY (gateway_id, device)
            )""",
            """CREATE TABLE device_twin_tags (
                gateway_id TEXT NOT NULL,
                device TEXT NOT NULL,
                tag TEXT NOT NULL,
                ts {real} NOT NULL,
                value {value},
                quality {int} NOT NULL,
                PRIMARY KEY (gateway_id, device, tag)
            ){norowid}""",
            """CREATE TABLE device_twin_derived (
                gateway_id TEXT NOT NULL,
                device TEXT NOT NULL,
                name TEXT NOT NULL,
                ts {real} NOT NULL,
                value {json} NOT NULL,
                PRIMARY KEY (gateway_id, device, name)
            ){norowid}""",
            "CREATE INDEX events_kind_ts ON events (kind, ts)",
        ),
    ),
)


def render(sql: str, dialect: Dialect) -> str:
    """``sql`` with the type placeholders of ``dialect`` filled in."""
    return sql.format(**_TYPES[dialect])


def migrations_for(dialect: Dialect) -> list[tuple[str, list[str]]]:
    """Every migration as ``(name, statements)`` in the SQL of ``dialect``."""
    return [(name, [render(sql, dialect) for sql in statements]) for name, statements in MIGRATIONS]


def unknown_migrations(applied: set[str]) -> list[str]:
    """Names recorded in a database that this collector does not know (a newer collector ran)."""
    known = {name for name, _ in MIGRATIONS}
    return sorted(applied - known)
