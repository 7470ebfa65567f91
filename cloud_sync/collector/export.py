"""Encoders of ``POST /api/v1/export``: rows of a page in, bytes out, one page at a time.

* **csv**, samples: ``ts,device,tag,value,quality,gateway``, which
  ``edge-agent analyze oee --samples`` reads as it is (``ts`` ISO 8601 with the
  offset ``+00:00``; the reader skips rows whose ``quality`` is 2, bad, and
  ignores ``gateway``). Values: numbers as Python writes them, booleans
  ``true``/``false``, null as an empty field. Events: ``ts,gateway,device,kind,event_id,attributes``
  with the attributes as JSON.
* **jsonl**: one JSON object per line, the rows of ``GET /api/v1/samples`` / ``/events``.
* **parquet**: one row group per page. Samples: ``ts`` (timestamp, microseconds,
  UTC), ``gateway_id``, ``seq``, ``device``, ``tag``, ``value`` (float64: numbers
  and booleans), ``value_text`` (string values), ``quality``; events: ``ts``,
  ``gateway_id``, ``seq``, ``event_id``, ``device``, ``kind``, ``attributes`` (JSON text).

Pure apart from pyarrow's writer, which writes into an in-memory sink drained
after every page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson

__all__ = ["CONTENT_TYPES", "Encoder", "Format", "What", "encoder"]

Format = Literal["csv", "jsonl", "parquet"]
What = Literal["samples", "events"]

CONTENT_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
SAMPLE_HEADER = ("ts", "device", "tag", "value", "quality", "gateway")
EVENT_HEADER = ("ts", "gateway", "device", "kind", "event_id", "attributes")


class Encoder(Protocol):
    def page(self, rows: Sequence[dict[str, Any]]) -> bytes:
        """The bytes of one page of rows (the first page also carries the header)."""
        ...

    def end(self) -> bytes:
        """The bytes that close the file (may be empty)."""
        ...


def encoder(what: What, fmt: Format) -> Encoder:
    if fmt == "csv":
        return _Csv(what)
    if fmt == "jsonl":
        return _Jsonl()
    return _Parquet(what)


def iso(ts: float) -> str:
    """ISO 8601 with the UTC offset, as the offline OEE reader wants it."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class _Csv:
    def __init__(self, what: What) -> None:
        self.what = what
        self.started = False

    def page(self, rows: Sequence[dict[str, Any]]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if not self.started:
            writer.writerow(SAMPLE_HEADER if self.what == "samples" else EVENT_HEADER)
            self.started = True
        if self.what == "samples":
            writer.writerows(
                (iso(r["ts"]), r["device"], r["tag"], _text(r["value"]), r["quality"], r["gateway_id"]) for r in rows
            )
        else:
            writer.writerows(
                (
                    iso(r["ts"]),
                    r["gateway_id"],
                    r["device"],
                    r["kind"],
                    r["event_id"],
                    orjson.dumps(r["attributes"]).decode(),
                )
                for r in rows
            )
        return out.getvalue().encode()

    def end(self) -> bytes:
        return b"" if self.started else self.page([])


class _Jsonl:
    def page(self, rows: Sequence[dict[str, Any]]) -> bytes:
        return b"".join(orjson.dumps(r) + b"\n" for r in rows)

    def end(self) -> bytes:
        return b""


class _Sink:
    """A write-only file for pyarrow whose bytes are taken out after each row group."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class _Parquet:
    def __init__(self, what: What) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.what = what
        ts = pa.timestamp("us", tz="UTC")
        if what == "samples":
            self.schema = pa.schema(
                [
                    ("ts", ts),
                    ("gateway_id", pa.string()),
                    ("seq", pa.int64()),
                    ("device", pa.string()),
                    ("tag", pa.string()),
                    ("value", pa.float64()),
                    ("value_text", pa.string()),
                    ("quality", pa.int64()),
                ]
            )
        else:
            self.schema = pa.schema(
                [
                    ("ts", ts),
                    ("gateway_id", pa.string()),
                    ("seq", pa.int64()),
                    ("event_id", pa.string()),
                    ("device", pa.string()),
                    ("kind", pa.string()),
                    ("attributes", pa.string()),
                ]
            )
        self.sink = _Sink()
        self.writer = pq.ParquetWriter(self.sink, self.schema, compression="zstd")

    def page(self, rows: Sequence[dict[str, Any]]) -> bytes:
        if not rows:
            return b""
        pa = self.pa
        columns: dict[str, Any] = {
            "ts": pa.array([round(r["ts"] * 1_000_000) for r in rows], pa.int64()).cast(self.schema.field("ts").type),
            "gateway_id": [r["gateway_id"] for r in rows],
            "seq": [r["seq"] for r in rows],
            "device": [r["device"] for r in rows],
        }
        if self.what == "samples":
            values = [r["value"] for r in rows]
            columns["tag"] = [r["tag"] for r in rows]
            columns["value"] = [None if v is None or isinstance(v, str) else float(v) for v in values]
            columns["value_text"] = [v if isinstance(v, str) else None for v in values]
            columns["quality"] = [r["quality"] for r in rows]
        else:
            columns["event_id"] = [r["event_id"] for r in rows]
            columns["kind"] = [r["kind"] for r in rows]
            columns["attributes"] = [orjson.dumps(r["attributes"]).decode() for r in rows]
        self.writer.write_table(pa.table(columns, schema=self.schema))
        return self.sink.take()

    def end(self) -> bytes:
        self.writer.close()
        return self.sink.take()
