"""Requests and responses of the analytics API (``docs/analytics.md``).

The pure analytics and their SQL twins take these requests and return these
responses, so an answer is the same whichever computed it. Instants are epoch
seconds (UTC); requests also take ISO 8601 (``2025-11-22T08:00:00Z``, no offset
meaning UTC). ``from`` is inclusive, ``to`` exclusive.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

__all__ = [
    "AlarmCountEntry",
    "AlarmOverview",
    "AnalyticsErrorBody",
    "Cohort",
    "CohortRequest",
    "CohortResponse",
    "DeviceFeatures",
    "DeviceSegment",
    "DeviceStatus",
    "EventProblem",
    "EventRejection",
    "EventsAccepted",
    "EventsBatchRequest",
    "FunnelRequest",
    "FunnelResponse",
    "FunnelStep",
    "GatewayStatus",
    "LossEntry",
    "OeeGroup",
    "OverviewQuery",
    "OverviewResponse",
    "Segment",
    "SegmentsQuery",
    "SegmentsResponse",
    "StepSpec",
    "parse_instant",
]

MAX_STEPS = 10
MAX_FILTERS = 10
MAX_BATCH = 1000

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_instant(value: Any) -> float:
    """Epoch seconds from a number, a numeric string or ISO 8601 text (no offset: UTC)."""
    if isinstance(value, bool):
        raise ValueError("expected epoch seconds or ISO 8601 text")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    elif isinstance(value, str) and _NUMBER.match(value.strip()):
        seconds = float(value.strip())
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r:.80} is neither ISO 8601 (2025-11-22T08:00:00Z) nor epoch seconds") from None
        seconds = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    else:
        raise ValueError("expected epoch seconds or ISO 8601 text")
    if not math.isfinite(seconds):
        raise ValueError("must be a finite number of seconds")
    return seconds


Instant = Annotated[float, BeforeValidator(parse_instant)]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Scalar = str | bool | int | float


def _scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value))


def _filter_value(value: Any) -> Any:
    if _scalar(value):
        return value
    if isinstance(value, list) and 0 < len(value) <= 100 and all(_scalar(v) for v in value):
        return value
    raise ValueError("must be text, a finite number, true/false, or a list of 1 to 100 of them")


_SCALAR_SCHEMA: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
FilterValue = Annotated[
    Scalar | list[Scalar],
    PlainValidator(_filter_value),
    WithJsonSchema({"anyOf": [_SCALAR_SCHEMA, {"type": "array", "items": _SCALAR_SCHEMA, "minItems": 1}]}),
]
GatewayName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]
EntityKey = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"),
    Field(
        description="an attribute holding the entity's id (text or integer), or 'device' (the event's gateway and "
        "device) or 'gateway'",
        examples=["part_id", "alarm_id", "device"],
    ),
]
Gap = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Window(_Request):
    start: Instant = Field(
        validation_alias=AliasChoices("from", "start"), serialization_alias="from", description="inclusive"
    )
    end: Instant = Field(validation_alias=AliasChoices("to", "end"), serialization_alias="to", description="exclusive")
    gateway: GatewayName | None = Field(default=None, description="only this gateway's events (a gateway key: its own)")

    @model_validator(mode="after")
    def _ordered(self) -> _Window:
        if self.end <= self.start:
            raise ValueError("'to' must be after 'from'")
        return self


class StepSpec(_Request):
    """An event kind and attribute filters (equal to a value, or to one of a list); JSON types must match."""

    kind: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    where: Annotated[dict[AttributeName, FilterValue], Field(max_length=MAX_FILTERS)] = {}
    label: Annotated[str, StringConstraints(max_length=100)] | None = None
    max_gap_s: Gap | None = Field(
        default=None, description="at most this long after the previous step (overrides max_step_gap_s)"
    )


# -- funnel ----------------------------------------------------------------------------------------


class FunnelRequest(_Window):
    """``POST /api/v1/analytics/funnel``."""

    steps: Annotated[list[StepSpec], Field(min_length=1, max_length=MAX_STEPS)]
    entity_key: EntityKey
    max_step_gap_s: Gap | None = Field(default=None, description="each step at most this long after the previous one")

    def gap(self, index: int) -> float | None:
        """The largest gap allowed into step ``index`` (0-based, ``index >= 1``)."""
        own = self.steps[index].max_gap_s
        return own if own is not None else self.max_step_gap_s


class FunnelStep(BaseModel):
    step: int = Field(description="1-based")
    kind: str
    label: str | None
    entities: int = Field(description="entities that reached this step, in order")
    conversion_from_previous: float | None = Field(description="entities / entities of the previous step")
    conversion_from_first: float | None
    drop_off: int = Field(description="entities of the previous step that did not reach this one")
    drop_off_rate: float | None
    median_s: float | None = Field(description="median time from the previous step (linear interpolation)")
    p90_s: float | None


class FunnelResponse(BaseModel):
    entity_key: str
    start: float = Field(serialization_alias="from")
    end: float = Field(serialization_alias="to")
    entities: int = Field(description="entities that reached the first step")
    steps: list[FunnelStep]


# -- cohort ----------------------------------------------------------------------------------------


class CohortRequest(_Window):
    """``POST /api/v1/analytics/cohort``."""

    entity_key: EntityKey
    first: StepSpec = Field(description="an entity's first such event (ever) puts it in the cohort of its period")
    returning: StepSpec = Field(
        validation_alias=AliasChoices("return", "returning"),
        serialization_alias="return",
        description="the return or failure event counted after it",
    )
    period: Literal["day", "week", "month"] = Field(default="week", description="UTC; weeks start on Monday")
    periods: int = Field(default=8, ge=1, le=60, description="offsets reported: 0 (the cohort's period) .. periods-1")
    metric: Literal["share", "entities", "events", "events_per_entity"] = "share"


class Cohort(BaseModel):
    period: str = Field(description="YYYY-MM-DD of the period start (day, week) or YYYY-MM (month)")
    start: float
    size: int = Field(description="entities whose first event falls in this period")
    values: list[float | None] = Field(description="per offset; null where that period starts at or after 'to'")


class CohortResponse(BaseModel):
    entity_key: str
    start: float = Field(serialization_alias="from")
    end: float = Field(serialization_alias="to")
    period: str
    metric: str
    offsets: list[int]
    cohorts: list[Cohort]


# -- segments --------------------------------------------------------------------------------------


ProfilePeriod = Literal["hour", "shift", "day"]


class SegmentsQuery(_Window):
    """``GET /api/v1/analytics/segments`` (query parameters)."""

    k: int = Field(default=4, ge=1, le=10, description="segments at most (fewer when fewer devices differ)")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    period: ProfilePeriod = Field(default="hour", description="which rolled-up machine_profile events to use")


class DeviceFeatures(BaseModel):
    gateway_id: str
    device: str
    run_s: float
    failures: int
    micro_stops: int
    mtbf_s: float | None = Field(description="run time per failure; null without failures")
    mttr_s: float | None
    micro_stops_per_h: float | None
    availability: float | None
    performance: float | None
    quality: float | None


class Segment(BaseModel):
    id: int
    name: str
    explanation: str
    size: int
    centroid: dict[str, float | None] = Field(description="mean features of the members, in their units")
    devices: list[str] = Field(description="gateway_id/device")


class DeviceSegment(DeviceFeatures):
    segment: int
    segment_name: str


class SegmentsResponse(BaseModel):
    start: float = Field(serialization_alias="from")
    end: float = Field(serialization_alias="to")
    k: int = Field(description="segments found")
    seed: int
    features: list[str]
    segments: list[Segment]
    devices: list[DeviceSegment]


# -- overview --------------------------------------------------------------------------------------


class OverviewQuery(_Window):
    """``GET /api/v1/analytics/overview`` (query parameters)."""

    now: Instant | None = Field(default=None, description="when 'online' is judged (default: 'to')")
    online_within_s: float = Field(default=300.0, gt=0, description="a gateway seen this recently is online")
    period: ProfilePeriod = "hour"


class GatewayStatus(BaseModel):
    gateway_id: str
    online: bool
    last_seen: float
    backlog: dict[str, int]
    backlog_total: int


class DeviceStatus(BaseModel):
    gateway_id: str
    device: str
    state: str = Field(description="an OEE state, 'disconnected', 'gateway_offline' or 'unknown'")
    since: float | None
    site: str | None
    area: str | None
    line: str | None


class OeeGroup(BaseModel):
    level: Literal["fleet", "site", "area", "line"]
    site: str | None
    area: str | None
    line: str | None
    devices: int
    planned_s: float
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None


class LossEntry(BaseModel):
    reason: str
    count: int
    duration_s: float
    share: float = Field(description="of all unplanned stop time in the window")
    devices: int


class AlarmCountEntry(BaseModel):
    alarm_id: str
    count: int
    share: float


class AlarmOverview(BaseModel):
    positions: int
    alarms: int
    avg_per_10min: float | None = Field(description="alarms per 10 min and operator position")
    flood_share: float | None = Field(description="share of 10-min intervals in flood, all positions")
    peak_10min: int
    unacknowledged: int
    chattering: list[str] = Field(description="alarm ids")
    stale: list[str] = Field(description="alarm ids")
    top: list[AlarmCountEntry]


class OverviewResponse(BaseModel):
    start: float = Field(serialization_alias="from")
    end: float = Field(serialization_alias="to")
    now: float
    gateways_online: int
    gateways_total: int
    gateways: list[GatewayStatus]
    backlog_total: int
    devices_by_state: dict[str, int]
    devices: list[DeviceStatus]
    oee: list[OeeGroup]
    worst_losses: list[LossEntry]
    alarms: AlarmOverview


# -- events in -------------------------------------------------------------------------------------


class EventsBatchRequest(_Request):
    """``POST /api/v1/events/batch``: each event is checked on its own (``docs/events.md``)."""

    events: Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH)]


class EventProblem(BaseModel):
    field: str
    message: str


class EventRejection(BaseModel):
    index: int = Field(description="position in the request's events")
    id: str | None
    errors: list[EventProblem]


class AnalyticsErrorBody(BaseModel):
    """Every 4xx/5xx answer of the analytics API."""

    detail: str
    errors: list[EventProblem] | None = Field(default=None, description="one entry per problem, naming the field")


class EventsAccepted(BaseModel):
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(description="events whose id this gateway had already stored (kept once)")
    rejected: list[EventRejection]
    ids: list[str] = Field(description="ids of the accepted and duplicate events, in request order")
