"""Response bodies of the collector's API, as models for the OpenAPI document.

Handlers build plain dicts and serialise them with orjson; these models only
describe them (``/openapi.json``), and the tests check the two agree.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cloud_sync.schema import Batch


class Problem(BaseModel):
    field: str = Field(description="path into the batch, e.g. rows[3] or backlog.samples; 'body' for the whole")
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer."""

    detail: str
    errors: list[Problem] | None = Field(None, description="422 only: one entry per problem (at most 50)")


class Counts(BaseModel):
    samples: int
    events: int
    batches: int
    duplicate_batches: int


class Stats(BaseModel):
    gateways: dict[str, Counts]


class LastBatch(BaseModel):
    batch_id: str
    stream: str
    first_seq: int
    last_seq: int
    rows: int
    received_at: float = Field(description="epoch seconds, collector clock")


class GatewayInfo(Counts):
    gateway_id: str
    first_seen: float = Field(description="epoch seconds of the first batch")
    last_seen: float = Field(description="epoch seconds of the latest batch, duplicates included")
    backlog: dict[str, Any] = Field(description="rows the gateway still had to send, as it reported last")
    last_batch: LastBatch | None


class Gateways(BaseModel):
    gateways: list[GatewayInfo]


class SampleOut(BaseModel):
    gateway_id: str
    seq: int
    device: str
    tag: str
    ts: float
    value: float | int | str | bool | None = Field(description="SQLite returns booleans as 1/0")
    quality: int


class EventOut(BaseModel):
    gateway_id: str
    seq: int
    event_id: str
    ts: float
    device: str
    kind: str
    attributes: dict[str, Any]


class Page(BaseModel):
    limit: int = Field(description="the limit applied (the requested one, capped)")
    truncated: bool = Field(description="more rows match: narrow the time range to see them")


class Samples(Page):
    samples: list[SampleOut]


class Events(Page):
    events: list[EventOut]


class Health(BaseModel):
    status: str = Field(description="'ok', or 'unavailable' with status 503")
    detail: str | None = None


def batch_request_body() -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of ``POST /api/v1/batches`` (:class:`~cloud_sync.schema.Batch`)."""
    schema = Batch.model_json_schema()
    schema["description"] = (
        "One batch (cloud_sync.schema). Send it gzip-compressed with content-encoding: gzip (or plain). "
        "batch_id must be gateway_id:stream:first_seq:last_seq; rows are in increasing seq order within "
        "first_seq..last_seq; sample rows are [seq, device, tag, ts, value, quality], event rows "
        "[seq, event_id, ts, device, kind, attributes]."
    )
    schema["properties"]["rows"]["items"].update({"minItems": 6, "maxItems": 6})
    return {"required": True, "content": {"application/json": {"schema": schema}}}
