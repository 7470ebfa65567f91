"""Keeping memory that the agent frees from staying resident.

glibc's allocator serves large blocks (over 128 KiB at first) with their own mappings, returned to
the system on free, but each such free raises that threshold up to the block's size (32 MiB at most).
Then the agent's large transient blocks (rows read for a sync batch, batch bodies, the writer's
inserts, SQLite's buffers) come from the arenas of the threads that use them, and the arenas keep
what was freed: measured with 10,000 tags (docs/PERFORMANCE.md "Memory"), 47-80 MB held by the
allocator with 22 MB in use. :func:`tune_allocator` fixes the thresholds instead (``mallopt``):
blocks from 64 KiB up get their own mapping and go back at once, and an arena's free top is
returned past 128 KiB; the same arena figures became 26 MB held for 22 MB in use.

Where the C library is not glibc (musl, macOS) nothing is changed; nor when the environment already
sets ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` (an operator's choice wins).

:func:`usage` is the ``memory`` part of ``/api/v1/status``: the process's resident size now and at its
peak, and what the C allocator holds against what is in use (glibc 2.33 or later). Python's own small
objects live in pools that Python maps itself; they are in the resident size, not in the allocator's.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_allocator", "usage"]

MMAP_THRESHOLD = 64 * 1024
TRIM_THRESHOLD = 128 * 1024
ENV_NAMES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3


def _mallopt() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        func: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    return func


def tune_allocator(environ: Mapping[str, str] | None = None) -> bool:
    """Fix glibc's mmap and trim thresholds (see the module docstring); True if they were set."""
    env = os.environ if environ is None else environ
    if any(name in env for name in ENV_NAMES):
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    func.restype = _MallInfo2
    func.argtypes = []
    result: Callable[[], _MallInfo2] = func
    return result


_MALLINFO2 = _mallinfo2()
MB = 1024 * 1024


def usage(status_file: Path = Path("/proc/self/status")) -> dict[str, float | None]:
    """``rss_mb`` and ``peak_rss_mb`` (VmRSS, VmHWM), ``allocator_held_mb`` and ``allocator_in_use_mb``
    (glibc's arenas plus its own mappings); None where the system does not tell."""
    out: dict[str, float | None] = {"rss_mb": None, "peak_rss_mb": None, "allocator_held_mb": None,
                                    "allocator_in_use_mb": None}
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key = "rss_mb" if line.startswith("VmRSS:") else "peak_rss_mb"
                out[key] = round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    if _MALLINFO2 is not None:
        info = _MALLINFO2()
        out["allocator_held_mb"] = round((info.arena + info.hblkhd) / MB, 1)
        out["allocator_in_use_mb"] = round((info.uordblks + info.hblkhd) / MB, 1)
    return out
