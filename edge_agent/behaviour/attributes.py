"""The attributes of each event kind, as strict pydantic models (event schema version 1).

Strict means: no coercion (``"3"`` is not an integer, ``true`` is not a number,
``1.0`` is not an integer; an integer is accepted where a number is expected)
and no unknown attributes. ``docs/events.md`` is the catalogue these models
implement; :mod:`edge_agent.behaviour.kinds` maps each kind to its model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "AgentStarted",
    "AlarmAcknowledged",
    "AlarmBase",
    "AlarmChattering",
    "AlarmCleared",
    "AlarmCondition",
    "AlarmCount",
    "AlarmKpis",
    "AlarmRaised",
    "AlarmReturned",
    "AlarmShelved",
    "AlarmState",
    "AlarmSuppressed",
    "AlarmUnshelved",
    "AlarmUnsuppressed",
    "AnomalyDetected",
    "Attributes",
    "BatchQuarantined",
    "BatchReplayed",
    "BufferCorrupt",
    "BufferOverflow",
    "BufferWriteFailed",
    "BufferWriteRecovered",
    "Category",
    "ConfigReloadFailed",
    "ConfigReloaded",
    "DeviceConnected",
    "DeviceDisconnected",
    "Distribution",
    "HealthRollup",
    "MachineProfile",
    "MaintenanceRecommended",
    "MalformedPayload",
    "OeeLosses",
    "OeeRollup",
    "OperatorAction",
    "OperatorLogin",
    "OperatorLoginFailed",
    "OperatorLogout",
    "OperatorSession",
    "ParetoEntry",
    "PartCount",
    "PartInspected",
    "PartLoaded",
    "PartMachined",
    "PartPacked",
    "PeriodFields",
    "PeriodKind",
    "Priority",
    "RunSession",
    "SetpointDone",
    "SetpointRequested",
    "SparkplugBirth",
    "SparkplugDeath",
    "SparkplugRebirthRequested",
    "SparkplugSeqGap",
    "StateChanged",
    "StopCategory",
    "StopEnded",
    "TwinChanged",
]

Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]
"""A non-empty name or id of at most 256 characters."""
Message = Annotated[str, StringConstraints(max_length=4096)]
"""Free text (an error message, a reason); may be empty."""
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Instant = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""Epoch seconds (UTC)."""
Count = Annotated[int, Field(ge=0)]
Ratio = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Scalar = bool | int | float | str
Category = Literal["running", "unplanned_stop", "planned_stop", "changeover", "excluded"]
"""The OEE state categories of ``docs/oee.md``."""
StopCategory = Literal["unplanned_stop", "planned_stop", "changeover", "excluded"]
Priority = Literal["urgent", "high", "medium", "low"]
AlarmState = Literal["normal", "unack", "acked", "rtn_unack"]
PeriodKind = Literal["hour", "shift", "day"]


class Attributes(BaseModel):
    """Base of every attribute model: strict types, no unknown keys, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# -- the gateway and its devices (names kept from the first releases) --------------------------


class DeviceConnected(Attributes):
    previous: Text


class DeviceDisconnected(Attributes):
    error: Message


class AgentStarted(Attributes):
    devices: list[Text]
    version: Text


class MalformedPayload(Attributes):
    topic: Text
    error: Message
    count: Count


class SparkplugBirth(Attributes):
    metrics: Count
    bdseq: int | None = None


class SparkplugDeath(Attributes):
    reason: Message
    bdseq: int | None = None


class SparkplugSeqGap(Attributes):
    expected: int
    got: int
    message: Text


class SparkplugRebirthRequested(Attributes):
    reason: Message


class ConfigReloaded(Attributes):
    added: list[Text]
    removed: list[Text]
    changed: list[Text]
    restart_needed_for: list[Text] = []


class ConfigReloadFailed(Attributes):
    problems: list[Message]


class SetpointRequested(Attributes):
    id: Text
    tag: Text
    value: Scalar
    user: Text


class SetpointDone(Attributes):
    """``setpoint_written`` (also sent by connectors, with ``tag`` and ``value`` only), ``_refused``, ``_failed``."""

    tag: Text
    value: Scalar
    id: Text | None = None
    user: Text | None = None
    detail: Message | None = None


class TwinChanged(Attributes):
    changes: dict[str, Any]


# -- data drops ----------------------------------------------------------------------------------


class BufferOverflow(Attributes):
    policy: Literal["drop_oldest", "drop_newest"]
    dropped_oldest: Count
    dropped_newest: Count
    since: Instant
    until: Instant
    total_dropped_oldest: Count
    total_dropped_newest: Count
    max_rows: Count
    max_bytes: Count


class BufferCorrupt(Attributes):
    moved_to: Text
    problem: Message


class BufferWriteFailed(Attributes):
    kind: Text
    error: Message


class BufferWriteRecovered(Attributes):
    kind: Text | None
    failed_s: Seconds
    failed_attempts: Count


class BatchQuarantined(Attributes):
    batch_id: Text
    stream: Literal["samples", "events"]
    first_seq: int
    last_seq: int
    rows: Count
    status: int
    answer: Message


class BatchReplayed(BatchQuarantined):
    """A quarantined batch sent again: the batch's fields, the collector's answer to the replay, and its record."""

    quarantine_id: int
    result: Literal["delivered", "refused"]


# -- machine behaviour -----------------------------------------------------------------------------


class StateChanged(Attributes):
    state: Category
    previous: Category | None = None
    code: Text | None = None


class StopEnded(Attributes):
    started_at: Instant
    duration_s: Seconds
    category: StopCategory
    reason: Annotated[str, StringConstraints(max_length=256)] = ""


class PartCount(Attributes):
    good: Count
    scrap: Count
    cycle_time_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None


class RunSession(Attributes):
    session_id: Text
    started_at: Instant
    ended_at: Instant
    duration_s: Seconds
    good: Count
    scrap: Count
    stops: Count
    end_reason: Literal["stop", "end_of_data"]
    stop_category: StopCategory | None = None


# -- part tracking (MES, quality station, packing) -------------------------------------------------


class PartLoaded(Attributes):
    part_id: Text
    order_id: Text | None = None
    station: Text | None = None


class PartMachined(Attributes):
    part_id: Text
    order_id: Text | None = None
    station: Text | None = None
    cycle_time_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None


class PartInspected(Attributes):
    part_id: Text
    result: Literal["ok", "nok", "rework"]
    order_id: Text | None = None
    station: Text | None = None
    defect: Text | None = None


class PartPacked(Attributes):
    part_id: Text
    order_id: Text | None = None
    station: Text | None = None
    package_id: Text | None = None


# -- alarms (ISA-18.2 states, edge_agent/alarms) ---------------------------------------------------------


class AlarmBase(Attributes):
    alarm_id: Text = Field(description="the alarm: one condition of one tag of one device, stable across raises")
    occurrence_id: Text | None = Field(default=None, description="one raise and the transitions that follow it")
    tag: Text | None = None
    priority: Priority | None = None
    condition: Text | None = None
    source: Text | None = None
    user: Text | None = None
    state: AlarmState | None = None
    previous: AlarmState | None = None
    value: Scalar | None = None
    limit: Number | None = None
    message: Message | None = None
    chattering: bool | None = None
    position: Text | None = Field(default=None, description="the operator position (console) it is shown at")


class AlarmRaised(AlarmBase):
    after: Literal["unshelved", "unsuppressed"] | None = None


class AlarmAcknowledged(AlarmBase):
    note: Message = ""


class AlarmReturned(AlarmBase):
    pass


class AlarmCleared(AlarmBase):
    pass


class AlarmShelved(AlarmBase):
    note: Message = ""
    until: Instant | None = None
    duration_s: Seconds | None = None


class AlarmUnshelved(AlarmBase):
    expired: bool = False


class AlarmSuppressed(AlarmBase):
    reason: Message = ""


class AlarmUnsuppressed(AlarmBase):
    pass


class AlarmCondition(AlarmBase):
    active: bool
    hidden_by: Literal["shelved", "suppressed"]


class AlarmChattering(AlarmBase):
    raises: Count
    window_s: Seconds


# -- operators on the status page ------------------------------------------------------------------


class OperatorLogin(Attributes):
    user: Text
    role: Text | None = None
    position: Text | None = None


class OperatorLoginFailed(Attributes):
    user: Annotated[str, StringConstraints(max_length=256)]
    reason: Message


class OperatorLogout(Attributes):
    user: Text
    position: Text | None = None
    reason: Literal["user", "idle", "replaced"] = "user"


class OperatorAction(Attributes):
    """An action on the page that has no event of its own (those that do: acknowledge, shelve, write)."""

    user: Text
    action: Text
    target: Text
    value: Scalar | None = None
    position: Text | None = None


class OperatorSession(Attributes):
    session_id: Text
    user: Text
    position: Text | None = None
    started_at: Instant
    ended_at: Instant
    duration_s: Seconds
    actions: Count
    actions_by_type: dict[str, Count]
    end_reason: Literal["logout", "idle", "replaced"]


# -- anomalies ---------------------------------------------------------------------------------------


class AnomalyDetected(Attributes):
    tag: Text
    score: Number
    method: Text
    threshold: Number | None = None
    value: Number | None = None


# -- behaviour profiles (rolled up per hour, shift or day) --------------------------------------------


class ParetoEntry(Attributes):
    reason: Annotated[str, StringConstraints(max_length=256)]
    count: Count
    duration_s: Seconds
    share: Ratio = Field(description="of the unplanned stop time of the period")
    cumulative_share: Ratio


class PeriodFields(Attributes):
    period: PeriodKind
    period_start: Instant
    period_end: Instant
    shift: Text | None = None


class MachineProfile(PeriodFields):
    site: Text | None = None
    area: Text | None = None
    line: Text | None = None
    run_s: Seconds
    planned_s: Seconds
    unplanned_stop_s: Seconds
    failures: Count
    micro_stops: Count
    mtbf_s: Seconds | None
    mttr_s: Seconds | None
    micro_stops_per_h: Ratio | None
    stop_reasons: list[ParetoEntry]
    cycles: Count
    cycle_time_p50_s: Seconds | None
    cycle_time_p90_s: Seconds | None
    cycle_time_p99_s: Seconds | None
    good: Count
    scrap: Count
    energy_kwh: Seconds | None = None
    energy_per_good_part_kwh: Seconds | None = None
    availability: Ratio | None
    performance: Ratio | None
    quality: Ratio | None


class AlarmCount(Attributes):
    alarm_id: Text
    count: Count
    share: Ratio


class Distribution(Attributes):
    count: Count
    p50_s: Seconds | None
    p90_s: Seconds | None
    p99_s: Seconds | None
    max_s: Seconds | None


class AlarmKpis(PeriodFields):
    position: Text
    alarms: Count
    periods_10min: Count
    avg_per_10min: Ratio
    flood_share: Ratio
    peak_10min: Count
    top: list[AlarmCount]
    top10_share: Ratio
    chattering: list[Text]
    stale: list[Text]
    unacknowledged: Count
    time_to_ack: Distribution
    time_to_ack_by_shift: dict[str, Distribution] = {}


# -- OEE, health and maintenance (rolled up per hour, shift or day; docs/oee.md, docs/predictive-maintenance.md) --


class OeeLosses(Attributes):
    breakdowns: Seconds
    setup_adjustments: Seconds
    small_stops: Seconds
    reduced_speed: Number = Field(description="negative when the machine ran faster than its ideal cycle time")
    quality: Seconds


class OeeRollup(PeriodFields):
    """The figures of ``edge-agent analyze oee`` for one device over one complete period."""

    site: Text | None = None
    area: Text | None = None
    line: Text | None = None
    planned_time_s: Seconds
    run_time_s: Seconds
    downtime_s: Seconds
    changeover_s: Seconds
    small_stops_s: Seconds
    no_data_s: Seconds = Field(default=0.0, description="planned time the agent had no data for (a partial period)")
    availability: Ratio
    performance: Ratio
    performance_raw: Ratio
    quality: Ratio
    oee: Ratio
    nothing_produced: bool
    total_count: Count
    good_count: Count
    scrap_count: Count
    losses_s: OeeLosses
    mtbf_s: Seconds | None
    mttr_s: Seconds | None
    breakdown_count: Count
    small_stop_count: Count


class HealthRollup(PeriodFields):
    """A device's health index (0-100), anomaly scores and remaining useful life over one period."""

    health_min: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None
    health_mean: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None
    health_last: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None
    anomaly_max: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    anomaly_active_s: Seconds = 0.0
    rul_last: Seconds | None = Field(default=None, description="remaining useful life at the period end, in rul_unit")
    rul_unit: Literal["cycles", "h"] | None = None


class MaintenanceRecommended(Attributes):
    """Remaining useful life fell below the configured horizon (or the health index below its floor)."""

    health: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
    rul: Seconds | None = None
    rul_unit: Literal["cycles", "h"] | None = None
    horizon: Seconds | None = None
    reason: Message
    model: Text | None = None
