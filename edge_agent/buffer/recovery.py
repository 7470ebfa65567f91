"""Start-up check of the buffer file, and moving a damaged one aside.

A buffer that is not SQLite, or fails ``PRAGMA quick_check`` (or ``integrity_check``),
is renamed to ``<name>.corrupt-<UTC timestamp>`` together with its WAL (as
``<name>.corrupt-<UTC timestamp>-wal``, so the pair still opens for forensics); the
shared-memory index is removed. The agent then starts on a fresh buffer instead of
refusing to run. A healthy file written by a newer agent is not touched here: the
migrations refuse it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from edge_agent.errors import StoreError

log = logging.getLogger("edge_agent.buffer")

IntegrityCheck = Literal["quick", "full", "off"]


@dataclass(frozen=True)
class MovedAside:
    """A damaged buffer that was renamed so the agent could start fresh."""

    original: Path
    moved_to: Path
    problem: str


def find_damage(path: Path, mode: IntegrityCheck = "quick") -> str | None:
    """What is wrong with the SQLite file at ``path``, or None when it looks sound (or is absent)."""
    if mode == "off" or not path.exists() or path.stat().st_size == 0:
        return None
    pragma = "quick_check" if mode == "quick" else "integrity_check"
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
        rows = [row[0] for row in conn.execute(f"PRAGMA {pragma}(20)")]
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return str(exc)
        # not damage (permissions, read-only file system, I/O): the caller reports it as it is
        raise StoreError(f"{path}: cannot open buffer: {exc}") from exc
    finally:
        if conn is not None:
            conn.close()
    if rows == ["ok"]:
        return None
    return "; ".join(str(r) for r in rows[:5]) or f"{pragma} returned nothing"


def move_aside(path: Path, problem: str, now: datetime | None = None) -> MovedAside:
    """Rename a damaged buffer (and its WAL) out of the way; raises StoreError if that fails."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}.{n}")
    try:
        path.rename(target)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            wal.rename(target.with_name(target.name + "-wal"))
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + "-shm").unlink()
    except OSError as exc:
        raise StoreError(f"{path}: buffer is damaged ({problem}) and cannot be moved aside: {exc}") from exc
    log.error(
        "buffer %s is damaged (%s): moved it aside to %s and starting with a fresh buffer; "
        "rows in it that were not yet synced are not in the new buffer",
        path, problem, target.name,
    )
    return MovedAside(path, target, problem)


def check_or_move_aside(path: Path, mode: IntegrityCheck = "quick") -> MovedAside | None:
    """Run the start-up check; a damaged file is moved aside (returned), a sound one left alone."""
    problem = find_damage(path, mode)
    if problem is None:
        return None
    return move_aside(path, problem)
