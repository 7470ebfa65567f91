"""Offline (historian backfill) input: a CSV of samples into a device's tracks.

The CSV has the header ``ts,device,tag,value`` (any column order; extra
columns are ignored, except an optional ``quality`` whose ``bad``/``2`` rows are
skipped). ``ts`` is ISO 8601 with a UTC offset (``Z`` allowed). Rows of other
devices or of tags OEE does not use are skipped unchecked. A usable row is fed
to the tracks; a bad one is reported as ``FILE:LINE: problem`` and skipped.
Within one tag, rows must be in time order (a file sorted by time, or by tag
then time, is fine).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import TextIO

from edge_agent.oee.model import OeeError, OeeOptions
from edge_agent.oee.tracks import CounterTrack, DeviceTracks, PartTrack, ReasonTrack, StateTrack
from edge_agent.profiles import OeeSignals

__all__ = ["CsvSamples", "parse_instant", "read_samples_csv"]

REQUIRED = ("ts", "device", "tag", "value")
BAD_QUALITY = frozenset({"bad", "2"})


def parse_instant(text: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp with a UTC offset; ValueError otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"ts: not an ISO 8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"ts: {text!r} has no UTC offset (write e.g. {text}+00:00 or {text}Z)")
    return moment.timestamp()


class _Feed:
    """The track of one (device, tag) and its last row: a repeated value only moves the track's last instant."""

    __slots__ = ("track", "ts", "value")

    def __init__(self, track: StateTrack | ReasonTrack | CounterTrack | PartTrack | None) -> None:
        self.track = track  # None: a row to skip (other device or tag)
        self.value: str | None = None
        self.ts = -math.inf  # of the last row; the track learns it at the next change or at the end


@dataclass
class CsvSamples:
    """What :func:`read_samples_csv` read: tracks per device, problems, data rows in the file."""

    path: Path
    tracks: dict[str, DeviceTracks] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rows: int = 0
    devices: set[str] = field(default_factory=set)  # every device with rows of the OEE tags

    def device_tracks(self, device: str | None) -> DeviceTracks:
        """The tracks of ``device``, or of the only device in the file; OeeError otherwise."""
        if device is not None:
            if device not in self.tracks:
                found = ", ".join(sorted(self.devices)) or "none"
                raise OeeError(f"{self.path}: no OEE samples of device {device!r} (devices with OEE tags: {found})")
            return self.tracks[device]
        if len(self.tracks) == 1:
            return next(iter(self.tracks.values()))
        if not self.tracks:
            raise OeeError(f"{self.path}: no samples of the profile's OEE tags")
        names = ", ".join(sorted(self.tracks))
        raise OeeError(f"{self.path}: samples of several devices ({names}): choose one with --device")


def read_samples_csv(
    path: Path | str, signals: OeeSignals, options: OeeOptions | None = None, device: str | None = None
) -> CsvSamples:
    """Read a samples CSV into :class:`DeviceTracks` (of ``device`` only, when given).

    Raises OeeError when the file cannot be used at all (missing, unreadable,
    no header or a header without the required columns); bad rows end up in
    ``problems`` with their line number.
    """
    path = Path(path)
    out = CsvSamples(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            _read(handle, out, signals, options, device)
    except FileNotFoundError:
        raise OeeError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise OeeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise OeeError(f"{path}: cannot read: {exc.strerror}") from None
    except csv.Error as exc:
        raise OeeError(f"{path}: not a readable CSV file: {exc}") from None
    return out


def _read(
    handle: TextIO, out: CsvSamples, signals: OeeSignals, options: OeeOptions | None, device: str | None
) -> None:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise OeeError(f"{out.path}: empty file (expected the header {','.join(REQUIRED)})")
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise OeeError(
            f"{out.path}:1: header {','.join(header)!r} lacks {', '.join(missing)} "
            f"(expected {','.join(REQUIRED)})"
        )
    i_ts, i_dev, i_tag, i_val = (columns.index(name) for name in REQUIRED)
    i_quality = columns.index("quality") if "quality" in columns else None
    width = len(columns)
    wanted = DeviceTracks(signals, options).tags
    feeds: dict[tuple[str, str], _Feed] = {}
    problems = out.problems
    where = str(out.path)
    pick = itemgetter(i_ts, i_dev, i_tag, i_val)
    clock = _Clock()
    last_text = ""
    ts = 0.0
    line = 1
    for line, row in enumerate(reader, start=2):
        if len(row) != width:
            if row:  # blank lines are fine
                problems.append(f"{where}:{line}: expected {width} fields, got {len(row)}")
            continue
        text, name, tag, value = pick(row)
        key = (name, tag)
        feed = feeds.get(key)
        if feed is None:
            feed = feeds[key] = _Feed(_track_for(out, key, wanted, device, signals, options))
        track = feed.track
        if track is None:
            continue
        if i_quality is not None and row[i_quality].strip().lower() in BAD_QUALITY:
            continue
        if text != last_text:
            try:
                ts = clock.parse(text)
            except ValueError as exc:
                problems.append(f"{where}:{line}: {exc}")
                continue
            last_text = text
        if ts < feed.ts:
            problems.append(
                f"{where}:{line}: ts {text} is before the previous sample of {name}/{tag} "
                f"({_iso(feed.ts)}); sort the file by time"
            )
            continue
        if value != feed.value or isinstance(track, PartTrack):  # each row of a part tag is one part
            track.touch(feed.ts)
            try:
                track.feed(ts, value)
            except ValueError as exc:
                problems.append(f"{where}:{line}: value: {exc}")
                continue
            feed.value = value
        feed.ts = ts
    for feed in feeds.values():
        if feed.track is not None:
            feed.track.touch(feed.ts)
    out.rows = line - 1


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class _Clock:
    """:func:`parse_instant` with a memory: a timestamp in the same minute and with the same
    fraction and offset as the last one parsed only adds its seconds to that minute."""

    __slots__ = ("minute", "minute_ts", "tail")

    def __init__(self) -> None:
        self.minute = self.tail = ""
        self.minute_ts = 0.0

    def parse(self, text: str) -> float:
        seconds = text[17:19]
        if text[:17] == self.minute and text[19:] == self.tail and seconds.isdigit() and seconds < "60":
            ts = self.minute_ts + int(seconds)
        else:
            ts = parse_instant(text)
            if len(text) >= 19 and text[10] in "T " and text[13] == text[16] == ":" and seconds.isdigit():
                self.minute, self.tail = text[:17], text[19:]
                self.minute_ts = ts - int(seconds)
            else:
                self.minute = ""
        return ts


def _track_for(
    out: CsvSamples, key: tuple[str, str], wanted: frozenset[str], device: str | None,
    signals: OeeSignals, options: OeeOptions | None,
) -> StateTrack | ReasonTrack | CounterTrack | PartTrack | None:
    name, tag = key
    if tag not in wanted:
        return None
    out.devices.add(name)
    if device is not None and name != device:
        return None
    tracks = out.tracks.get(name)
    if tracks is None:
        tracks = out.tracks[name] = DeviceTracks(signals, options, device=name)
    return tracks.by_tag[tag]
