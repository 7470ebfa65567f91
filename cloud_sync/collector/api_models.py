"""Response bodies of the collector's API, as models for the OpenAPI document.

Handlers build plain dicts and serialise them with orjson; these models only
describe them (``/openapi.json``), and the tests check the two agree.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cloud_sync.schema import Batch
from edge_agent.behaviour.attributes import OeeLosses, OeeRollup


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


class ReportedValue(BaseModel):
    value: float | int | str | bool | None = Field(description="SQLite returns booleans as 1/0")
    ts: float = Field(description="epoch seconds of the value, gateway clock")
    quality: int = Field(description="0 good, 1 uncertain, 2 bad")


class DerivedFigure(BaseModel):
    value: Any = Field(description="as the event carried it (see the twin section of docs/events.md)")
    ts: float = Field(description="epoch seconds the figure describes (rollups: the end of their period)")


class DeviceHeadline(BaseModel):
    state: str | None = Field(description="state category (running, unplanned_stop, ...); null: never reported")
    connection: str | None = Field(description="connected, disconnected, ...; null: never reported")
    alarms_active: int | None = Field(description="active alarms as the twin last reported; null: never reported")
    last_seen: float = Field(description="epoch seconds of the newest value or figure, gateway clock")
    updated_at: float = Field(description="epoch seconds of the last batch that changed the twin, collector clock")


class DeviceSummary(DeviceHeadline):
    device: str
    tags: int = Field(description="tags with a reported value")


class Devices(BaseModel):
    gateway_id: str
    devices: list[DeviceSummary]


class DeviceTwin(DeviceHeadline):
    gateway_id: str
    device: str
    reported: dict[str, ReportedValue] = Field(description="the newest value per tag, from samples and twin changes")
    derived: dict[str, DerivedFigure] = Field(
        description="state, connection, oee, parts, health, alarms, maintenance, oee_rollup.PERIOD, "
        "health_rollup.PERIOD: the newest of each"
    )


class OeeRollupOut(OeeRollup):
    """One ``oee_rollup`` event's figures (docs/events.md), with where it came from."""

    gateway_id: str
    device: str


class OeeTotals(BaseModel):
    """Figures recomputed from summed times and counts (docs/oee.md, "At the collector")."""

    periods: int = Field(description="rollups aggregated")
    devices: int = Field(description="distinct (gateway, device) pairs among them")
    planned_time_s: float
    run_time_s: float
    downtime_s: float
    changeover_s: float
    small_stops_s: float
    ideal_time_s: float = Field(description="sum of performance_raw x run_time_s: ideal cycle time x total count")
    availability: float
    performance: float
    performance_raw: float
    quality: float
    oee: float
    nothing_produced: bool
    total_count: int
    good_count: int
    scrap_count: int
    losses_s: OeeLosses
    mtbf_s: float | None
    mttr_s: float | None
    breakdown_count: int
    small_stop_count: int


class OeeGroup(OeeTotals):
    """One group's totals; the key fields present depend on ``group``."""

    gateway_id: str | None = None
    device: str | None = None
    site: str | None = None
    area: str | None = None
    line: str | None = None


class FleetOee(BaseModel):
    granularity: str
    group: str | None
    rollups: list[OeeRollupOut] = Field(description="per device and period, ordered by period start")
    truncated: bool = Field(description="more rollups matched than limit; total and groups still count them all")
    skipped: int = Field(description="oee_rollup events whose attributes do not match the catalogue")
    total: OeeTotals
    groups: list[OeeGroup] | None = Field(None, description="with a group option only")


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
