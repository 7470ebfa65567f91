"""Progress bars for long command line operations, on stderr and only when stderr is a terminal.

Piped or redirected (a script, a systemd unit, a test capturing stderr), nothing is written and the
wrappers cost next to nothing. Three ways in:

* :class:`Progress`, a bar you move with :meth:`~Progress.update` / :meth:`~Progress.set`;
* :func:`iterate`, which moves a bar as a loop consumes items;
* :func:`watch_file`, which shows how far some code (that opens the file itself) has read a file, from
  the position the kernel keeps for the open file (``/proc/self/fdinfo``; on systems without it the bar
  shows the elapsed time only).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TextIO, TypeVar

__all__ = ["Progress", "iterate", "watch_file"]

T = TypeVar("T")
BAR_WIDTH = 28
REDRAW_S = 0.1


def _size(n: float, unit: str) -> str:
    if unit == "B":
        for step, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if n >= step:
                return f"{n / step:.1f} {name}"
        return f"{n:.0f} B"
    return f"{n:,.0f}{(' ' + unit) if unit else ''}"


class Progress:
    """One bar: ``label [#####.....]  45%  1.2 MB / 2.7 MB  3.1 s`` redrawn in place on ``stream``.

    ``enabled`` defaults to whether ``stream`` (stderr) is a terminal. ``total`` may be None (unknown):
    then the bar shows the count and the elapsed time.
    """

    def __init__(
        self, label: str, total: float | None = None, *, unit: str = "", stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.done = 0.0
        self._started = time.monotonic()
        self._drawn = 0.0
        self._width = 0
        self._closed = False
        self._lock = threading.Lock()
        if self.enabled:
            self._draw(force=True)

    def update(self, n: float = 1) -> None:
        self.set(self.done + n)

    def set(self, done: float) -> None:
        self.done = done
        if self.enabled and time.monotonic() - self._drawn >= REDRAW_S:
            self._draw()

    def line(self) -> str:
        """The text of the bar as it stands."""
        elapsed = f"{time.monotonic() - self._started:.1f} s"
        if self.total:
            fraction = min(1.0, max(0.0, self.done / self.total))
            filled = round(fraction * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            return (f"{self.label} [{bar}] {fraction * 100:3.0f}%  "
                    f"{_size(self.done, self.unit)} / {_size(self.total, self.unit)}  {elapsed}")
        return f"{self.label}  {_size(self.done, self.unit)}  {elapsed}"

    def _draw(self, force: bool = False) -> None:
        with self._lock:
            if self._closed and not force:
                return
            text = self.line()
            columns = shutil.get_terminal_size((80, 24)).columns
            text = text[: max(10, columns - 1)]
            pad = " " * max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write("\r" + text + pad)
            self.stream.flush()
            self._drawn = time.monotonic()

    def close(self) -> None:
        """Draw the final state and end the line (once)."""
        if self._closed:
            return
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and self.total:
            self.done = self.total
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def iterate(
    items: Iterable[T], label: str, total: int | None = None, *, unit: str = "", stream: TextIO | None = None,
    enabled: bool | None = None,
) -> Iterator[T]:
    """Yield ``items``, moving a bar as they are consumed (every 256 items)."""
    bar = Progress(label, total, unit=unit, stream=stream, enabled=enabled)
    if not bar.enabled:
        yield from items
        return
    count = 0
    completed = False
    try:
        for count, item in enumerate(items, start=1):
            yield item
            if not count & 255:
                bar.set(count)
        completed = True
    finally:
        bar.done = count if not (completed and total) else total
        bar.close()


def _open_position(target: str) -> int | None:
    """Read position of this process's open file ``target``, from /proc (None if not open or no /proc)."""
    fd_dir = "/proc/self/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"{fd_dir}/{fd}") != target:
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                for line in info:
                    if line.startswith("pos:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return None


@contextmanager
def watch_file(
    path: Path | str, label: str | None = None, *, stream: TextIO | None = None, enabled: bool | None = None
) -> Iterator[Progress]:
    """Show how far the code in the ``with`` block has read ``path`` (bytes), redrawn 10 times a second."""
    target = os.path.realpath(path)
    try:
        total: float | None = os.path.getsize(target)
    except OSError:
        total = None
    bar = Progress(label or f"reading {Path(path).name}", total, unit="B", stream=stream, enabled=enabled)
    if not bar.enabled:
        yield bar
        return
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(REDRAW_S):
            position = _open_position(target)
            if position is not None and position > bar.done:
                bar.set(position)

    watcher = threading.Thread(target=poll, name="progress", daemon=True)
    watcher.start()
    ok = False
    try:
        yield bar
        ok = True
    finally:
        stop.set()
        watcher.join()
        if ok and total:
            bar.done = total
        bar.close()
