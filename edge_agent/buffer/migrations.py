"""Named schema migrations of the buffer, recorded in ``_migrations``.

A migration is either SQL, applied in one transaction together with its record,
or a step function for work that cannot run inside a transaction (``VACUUM``).
A step returns ``False`` when it could not be done now (not enough disk space,
say); it is then not recorded and is tried again at the next start, and the
buffer works without it meanwhile. Never edit or reorder an applied migration:
add one.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from edge_agent.errors import StoreError

log = logging.getLogger("edge_agent.buffer")

Step = Callable[[sqlite3.Connection], bool]


def _incremental_vacuum(conn: sqlite3.Connection) -> bool:
    """Switch the file to ``auto_vacuum=INCREMENTAL`` so pruned space can be given back to the OS.

    A new file already has it (set before its first table was created); a file made by
    an older agent needs one ``VACUUM``, which rewrites it and needs about its size in
    free disk space. Without it freed pages are still reused, the file just never shrinks.
    """
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
        return True
    size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    log.info("buffer: enabling incremental vacuum (one-time rewrite of %.1f MB)", size / 1e6)
    try:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")
    except sqlite3.Error as exc:
        log.warning(
            "buffer: cannot enable incremental vacuum now (%s); freed space is reused but not returned "
            "to the OS until it succeeds at a later start", exc,
        )
        return False
    return True


MIGRATIONS: list[tuple[str, str | Step]] = [
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
    ("0002_incremental_vacuum", _incremental_vacuum),
    (
        # The live tail: rows tail_first..tail_acked were delivered ahead of an older backlog
        # (0/0: no tail). Everything up to acked_seq and everything in the tail is synced.
        "0003_sync_live_tail",
        """
        ALTER TABLE sync_state ADD COLUMN tail_first INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sync_state ADD COLUMN tail_acked INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        # Batches the collector refused for good (4xx): the range, the answer, and the batch
        # as sent (gzip'd JSON) so an operator can inspect or replay it.
        "0004_quarantine",
        """
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            batch_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            rows INTEGER NOT NULL,
            status INTEGER NOT NULL,
            answer TEXT NOT NULL,
            at REAL NOT NULL,
            body BLOB
        );
        """,
    ),
    (
        # What a source (an MQTT session) delivered and the buffer committed, keyed by its packet id:
        # a message redelivered after a crash between commit and acknowledgement is recognised.
        "0005_delivery_marks",
        """
        CREATE TABLE delivery_marks (
            source TEXT NOT NULL,
            mid INTEGER NOT NULL,
            digest TEXT NOT NULL,
            PRIMARY KEY (source, mid)
        ) WITHOUT ROWID;
        """,
    ),
    (
        # Several delivered ranges above the watermark (an outage that starts during a drain leaves a
        # second gap behind the live tail); the single tail of 0003 becomes the first island, and the
        # columns tail_first/tail_acked are no longer read (kept at 0).
        "0006_sync_islands",
        """
        CREATE TABLE sync_islands (
            stream TEXT NOT NULL,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            PRIMARY KEY (stream, first_seq)
        ) WITHOUT ROWID;
        INSERT INTO sync_islands (stream, first_seq, last_seq)
            SELECT stream, tail_first, tail_acked FROM sync_state WHERE tail_first > 0;
        UPDATE sync_state SET tail_first = 0, tail_acked = 0;
        """,
    ),
    (
        # An operator's replay of a quarantined batch (edge-agent quarantine replay): when, and what
        # the collector answered (2xx: delivered; the record stays as a trace).
        "0007_quarantine_replay",
        """
        ALTER TABLE quarantine ADD COLUMN replayed_at REAL;
        ALTER TABLE quarantine ADD COLUMN replay_status INTEGER;
        ALTER TABLE quarantine ADD COLUMN replay_answer TEXT;
        """,
    ),
]


def applied(conn: sqlite3.Connection) -> list[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every pending migration in order; returns the names applied.

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
    for name, step in MIGRATIONS:
        if name in done:
            continue
        if callable(step):
            if not step(conn):
                continue
            step_sql = ""
        else:
            step_sql = step
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in step_sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        ran.append(name)
    return ran
