"""What a failed SQLite call means for the buffer, in words an operator can act on.

``sqlite3`` errors are mapped here to :class:`BufferFault` (a :class:`StoreError`)
with a ``kind``:

* ``disk_full``  -- the file cannot grow (SQLITE_FULL: no space, quota, or ``max_page_count``);
* ``read_only``  -- the file or its file system is read-only (SQLITE_READONLY*);
* ``io_error``   -- the disk failed a read or write (SQLITE_IOERR*);
* ``corrupt``    -- the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB);
* ``busy``       -- another process holds a lock (SQLITE_BUSY, SQLITE_LOCKED);
* ``bad_value``  -- a row holds a value SQLite cannot store (a bug upstream, not a disk problem);
* ``error``      -- anything else.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.errors import StoreError

_KINDS = (
    ("SQLITE_FULL", "disk_full", "disk full, the buffer file cannot grow"),
    ("SQLITE_READONLY", "read_only", "the buffer file or its file system is read-only"),
    ("SQLITE_IOERR", "io_error", "disk I/O error"),
    ("SQLITE_CORRUPT", "corrupt", "the buffer file is damaged"),
    ("SQLITE_NOTADB", "corrupt", "the buffer file is damaged"),
    ("SQLITE_BUSY", "busy", "the buffer file is locked by another process"),
    ("SQLITE_LOCKED", "busy", "the buffer file is locked"),
)


class BufferFault(StoreError):
    """A buffer operation failed; nothing of it was committed."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def classify(exc: BaseException) -> tuple[str, str]:
    """``(kind, explanation)`` of an exception raised by sqlite3."""
    if isinstance(exc, sqlite3.InterfaceError | sqlite3.ProgrammingError | TypeError | OverflowError):
        return "bad_value", "a value cannot be stored"
    name = getattr(exc, "sqlite_errorname", "") or ""
    for prefix, kind, explanation in _KINDS:
        if name.startswith(prefix):
            return kind, explanation
    return "error", "SQLite error"


def fault(path: Path, action: str, exc: BaseException) -> BufferFault:
    """The :class:`BufferFault` for ``exc`` raised while doing ``action`` on the buffer at ``path``."""
    kind, explanation = classify(exc)
    return BufferFault(f"{path}: {action} failed ({explanation}): {exc}", kind)
