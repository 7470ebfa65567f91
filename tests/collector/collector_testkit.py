"""Batch builders shared by the collector tests."""

from __future__ import annotations

import gzip
from typing import Any

import orjson

from cloud_sync.schema import Batch, batch_id

ANY_KEY = "key-any"
BOUND_KEY = "key-gw1"
KEYS: dict[str, str | None] = {ANY_KEY: None, BOUND_KEY: "gw1"}


def sample_rows(first: int, last: int) -> list[list[Any]]:
    """Rows ``first..last`` of the samples stream with mixed value types."""
    values: list[Any] = [1.5, 7, "open", True, None]
    return [
        [seq, "pump-1", f"t{seq % 3}", 1763798400.0 + seq, values[seq % len(values)], seq % 3]
        for seq in range(first, last + 1)
    ]


def event_rows(first: int, last: int) -> list[list[Any]]:
    return [
        [seq, f"ev-{seq}", 1763798400.0 + seq, "pump-1", "alarm", {"limit": 80.5, "tags": ["a", "b"]}]
        for seq in range(first, last + 1)
    ]


def batch_dict(
    gateway: str = "gw1",
    first: int = 1,
    last: int = 10,
    stream: str = "samples",
    rows: list[list[Any]] | None = None,
) -> dict[str, Any]:
    """A valid batch as the gateway sends it (before gzip)."""
    if rows is None:
        rows = sample_rows(first, last) if stream == "samples" else event_rows(first, last)
    return {
        "schema_version": 1,
        "gateway_id": gateway,
        "batch_id": batch_id(gateway, stream, first, last),
        "stream": stream,
        "first_seq": first,
        "last_seq": last,
        "sent_at": 1763798500.25,
        "backlog": {"samples": 5, "events": 0},
        "rows": rows,
    }


def make_batch(**kwargs: Any) -> Batch:
    return Batch.model_validate(batch_dict(**kwargs))


def gz(obj: Any) -> bytes:
    return gzip.compress(orjson.dumps(obj), compresslevel=1)


def headers(key: str | None = ANY_KEY, encoding: str | None = "gzip") -> dict[str, str]:
    out = {"content-type": "application/json"}
    if key is not None:
        out["x-api-key"] = key
    if encoding is not None:
        out["content-encoding"] = encoding
    return out
