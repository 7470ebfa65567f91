"""The batch wire format (version 1), shared by the agent's uploader and the collector.

``POST /api/v1/batches`` with headers ``x-api-key`` and ``content-encoding: gzip``;
the body is gzip-compressed JSON::

    {
      "schema_version": 1,
      "gateway_id": "plant-a-gw1",
      "batch_id": "plant-a-gw1:samples:1001:2000",
      "stream": "samples",                 # or "events"
      "first_seq": 1001, "last_seq": 2000,  # contiguous sequence range of the stream
      "sent_at": 1763798400.25,            # UTC epoch seconds
      "backlog": {"samples": 52000, "events": 0},
      "rows": [...]
    }

Rows of the samples stream: ``[seq, device, tag, ts, value, quality]``;
rows of the events stream: ``[seq, event_id, ts, device, kind, attributes]``;
rows are in increasing ``seq`` order (the collector answers 422 otherwise).
A batch is identified by (gateway, stream, first_seq, last_seq): the same rows
re-sent after a crash are recognised, and rows are unique per (gateway, stream, seq),
so delivery is exactly once at the collector with at-least-once transport.

The collector answers 200 with :class:`BatchAck` only after the batch is committed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
Stream = Literal["samples", "events"]

SampleRow = tuple[int, str, str, float, float | int | str | bool | None, int]
EventRow = tuple[int, str, float, str, str, dict[str, Any]]


def batch_id(gateway_id: str, stream: str, first_seq: int, last_seq: int) -> str:
    return f"{gateway_id}:{stream}:{first_seq}:{last_seq}"


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    gateway_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    batch_id: str
    stream: Stream
    first_seq: int = Field(ge=1)
    last_seq: int = Field(ge=1)
    sent_at: float
    backlog: dict[str, int] = {}
    rows: list[list[Any]]

    @model_validator(mode="after")
    def _consistent(self) -> Batch:
        if self.last_seq < self.first_seq:
            raise ValueError("last_seq is below first_seq")
        if self.batch_id != batch_id(self.gateway_id, self.stream, self.first_seq, self.last_seq):
            raise ValueError("batch_id does not match gateway_id, stream, first_seq and last_seq")
        width = 6
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"rows[{i}]: expected {width} columns, got {len(row)}")
            seq = row[0]
            if not isinstance(seq, int) or not self.first_seq <= seq <= self.last_seq:
                raise ValueError(f"rows[{i}]: seq {seq!r} outside {self.first_seq}..{self.last_seq}")
        return self


class BatchAck(BaseModel):
    batch_id: str
    accepted: int
    duplicates: int
    duplicate_batch: bool
