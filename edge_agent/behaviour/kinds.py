"""Event kinds (schema version 1) and the validation of an event's attributes per kind.

Every kind of ``docs/events.md`` is a constant here and maps to a strict
attribute model (:mod:`edge_agent.behaviour.attributes`). Kinds of other
systems are namespaced, ``<namespace>.<name>`` (``mes.order_released``): their
attributes are any JSON object. ``session_id`` is an envelope field that events
carry as an attribute on the wire (see ``docs/events.md``); it is allowed on
every kind.

    >>> validate_attributes("stop_ended", {"started_at": 1.0e9, "duration_s": 30, "category": "unplanned_stop"})
    StopEnded(started_at=1000000000.0, duration_s=30, category='unplanned_stop', reason='')
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from edge_agent.behaviour import attributes as a

__all__ = [
    "AGENT_STARTED",
    "ALARM_ACKNOWLEDGED",
    "ALARM_CHATTERING",
    "ALARM_CLEARED",
    "ALARM_CONDITION",
    "ALARM_KINDS",
    "ALARM_KPIS",
    "ALARM_RAISED",
    "ALARM_RETURNED",
    "ALARM_SHELVED",
    "ALARM_SUPPRESSED",
    "ALARM_UNSHELVED",
    "ALARM_UNSUPPRESSED",
    "ANOMALY_DETECTED",
    "BATCH_QUARANTINED",
    "BATCH_REPLAYED",
    "BUFFER_CORRUPT",
    "BUFFER_OVERFLOW",
    "BUFFER_WRITE_FAILED",
    "BUFFER_WRITE_RECOVERED",
    "CONFIG_RELOADED",
    "CONFIG_RELOAD_FAILED",
    "DEVICE_CONNECTED",
    "DEVICE_DISCONNECTED",
    "EVENT_SCHEMA_VERSION",
    "GATEWAY_DEVICE",
    "HEALTH_ROLLUP",
    "KINDS",
    "MACHINE_PROFILE",
    "MAINTENANCE_RECOMMENDED",
    "MALFORMED_PAYLOAD",
    "OEE_ROLLUP",
    "OPERATOR_ACTION",
    "OPERATOR_ACTIONS",
    "OPERATOR_LOGIN",
    "OPERATOR_LOGIN_FAILED",
    "OPERATOR_LOGOUT",
    "OPERATOR_SESSION",
    "PART_COUNT",
    "PART_INSPECTED",
    "PART_LOADED",
    "PART_MACHINED",
    "PART_PACKED",
    "RUN_SESSION",
    "SESSION_ID",
    "SETPOINT_FAILED",
    "SETPOINT_REFUSED",
    "SETPOINT_REQUESTED",
    "SETPOINT_WRITTEN",
    "SPARKPLUG_BIRTH",
    "SPARKPLUG_DEATH",
    "SPARKPLUG_REBIRTH_REQUESTED",
    "SPARKPLUG_SEQ_GAP",
    "STATE_CHANGED",
    "STOP_ENDED",
    "TWIN_CHANGED",
    "InvalidAttributes",
    "is_custom_kind",
    "model_for",
    "validate_attributes",
]

EVENT_SCHEMA_VERSION: Final = 1
GATEWAY_DEVICE: Final = "_gateway"
"""The ``device`` of events about the gateway itself (agent, buffer, sync)."""
SESSION_ID: Final = "session_id"
"""The attribute that carries the envelope's session id on the wire."""

# gateway and devices
DEVICE_CONNECTED: Final = "device_connected"
DEVICE_DISCONNECTED: Final = "device_disconnected"
AGENT_STARTED: Final = "agent_started"
MALFORMED_PAYLOAD: Final = "malformed_payload"
SETPOINT_REQUESTED: Final = "setpoint_requested"
SETPOINT_WRITTEN: Final = "setpoint_written"
SETPOINT_REFUSED: Final = "setpoint_refused"
SETPOINT_FAILED: Final = "setpoint_failed"
TWIN_CHANGED: Final = "twin_changed"
SPARKPLUG_BIRTH: Final = "sparkplug_birth"
SPARKPLUG_DEATH: Final = "sparkplug_death"
SPARKPLUG_SEQ_GAP: Final = "sparkplug_seq_gap"
SPARKPLUG_REBIRTH_REQUESTED: Final = "sparkplug_rebirth_requested"
CONFIG_RELOADED: Final = "config_reloaded"
CONFIG_RELOAD_FAILED: Final = "config_reload_failed"
# data drops
BUFFER_OVERFLOW: Final = "buffer_overflow"
BUFFER_CORRUPT: Final = "buffer_corrupt"
BUFFER_WRITE_FAILED: Final = "buffer_write_failed"
BUFFER_WRITE_RECOVERED: Final = "buffer_write_recovered"
BATCH_QUARANTINED: Final = "batch_quarantined"
BATCH_REPLAYED: Final = "batch_replayed"
# machines
STATE_CHANGED: Final = "state_changed"
STOP_ENDED: Final = "stop_ended"
PART_COUNT: Final = "part_count"
RUN_SESSION: Final = "run_session"
# parts
PART_LOADED: Final = "part_loaded"
PART_MACHINED: Final = "part_machined"
PART_INSPECTED: Final = "part_inspected"
PART_PACKED: Final = "part_packed"
# alarms
ALARM_RAISED: Final = "alarm_raised"
ALARM_ACKNOWLEDGED: Final = "alarm_acknowledged"
ALARM_RETURNED: Final = "alarm_returned"
ALARM_CLEARED: Final = "alarm_cleared"
ALARM_SHELVED: Final = "alarm_shelved"
ALARM_UNSHELVED: Final = "alarm_unshelved"
ALARM_SUPPRESSED: Final = "alarm_suppressed"
ALARM_UNSUPPRESSED: Final = "alarm_unsuppressed"
ALARM_CONDITION: Final = "alarm_condition"
ALARM_CHATTERING: Final = "alarm_chattering"
# operators
OPERATOR_LOGIN: Final = "operator_login"
OPERATOR_LOGIN_FAILED: Final = "operator_login_failed"
OPERATOR_LOGOUT: Final = "operator_logout"
OPERATOR_ACTION: Final = "operator_action"
OPERATOR_SESSION: Final = "operator_session"
# anomalies
ANOMALY_DETECTED: Final = "anomaly_detected"
# behaviour profiles
MACHINE_PROFILE: Final = "machine_profile"
ALARM_KPIS: Final = "alarm_kpis"
OEE_ROLLUP: Final = "oee_rollup"
HEALTH_ROLLUP: Final = "health_rollup"
# maintenance
MAINTENANCE_RECOMMENDED: Final = "maintenance_recommended"

KINDS: Final[Mapping[str, type[a.Attributes]]] = {
    DEVICE_CONNECTED: a.DeviceConnected,
    DEVICE_DISCONNECTED: a.DeviceDisconnected,
    AGENT_STARTED: a.AgentStarted,
    MALFORMED_PAYLOAD: a.MalformedPayload,
    SETPOINT_REQUESTED: a.SetpointRequested,
    SETPOINT_WRITTEN: a.SetpointDone,
    SETPOINT_REFUSED: a.SetpointDone,
    SETPOINT_FAILED: a.SetpointDone,
    TWIN_CHANGED: a.TwinChanged,
    SPARKPLUG_BIRTH: a.SparkplugBirth,
    SPARKPLUG_DEATH: a.SparkplugDeath,
    SPARKPLUG_SEQ_GAP: a.SparkplugSeqGap,
    SPARKPLUG_REBIRTH_REQUESTED: a.SparkplugRebirthRequested,
    CONFIG_RELOADED: a.ConfigReloaded,
    CONFIG_RELOAD_FAILED: a.ConfigReloadFailed,
    BUFFER_OVERFLOW: a.BufferOverflow,
    BUFFER_CORRUPT: a.BufferCorrupt,
    BUFFER_WRITE_FAILED: a.BufferWriteFailed,
    BUFFER_WRITE_RECOVERED: a.BufferWriteRecovered,
    BATCH_QUARANTINED: a.BatchQuarantined,
    BATCH_REPLAYED: a.BatchReplayed,
    STATE_CHANGED: a.StateChanged,
    STOP_ENDED: a.StopEnded,
    PART_COUNT: a.PartCount,
    RUN_SESSION: a.RunSession,
    PART_LOADED: a.PartLoaded,
    PART_MACHINED: a.PartMachined,
    PART_INSPECTED: a.PartInspected,
    PART_PACKED: a.PartPacked,
    ALARM_RAISED: a.AlarmRaised,
    ALARM_ACKNOWLEDGED: a.AlarmAcknowledged,
    ALARM_RETURNED: a.AlarmReturned,
    ALARM_CLEARED: a.AlarmCleared,
    ALARM_SHELVED: a.AlarmShelved,
    ALARM_UNSHELVED: a.AlarmUnshelved,
    ALARM_SUPPRESSED: a.AlarmSuppressed,
    ALARM_UNSUPPRESSED: a.AlarmUnsuppressed,
    ALARM_CONDITION: a.AlarmCondition,
    ALARM_CHATTERING: a.AlarmChattering,
    OPERATOR_LOGIN: a.OperatorLogin,
    OPERATOR_LOGIN_FAILED: a.OperatorLoginFailed,
    OPERATOR_LOGOUT: a.OperatorLogout,
    OPERATOR_ACTION: a.OperatorAction,
    OPERATOR_SESSION: a.OperatorSession,
    ANOMALY_DETECTED: a.AnomalyDetected,
    MACHINE_PROFILE: a.MachineProfile,
    ALARM_KPIS: a.AlarmKpis,
    OEE_ROLLUP: a.OeeRollup,
    HEALTH_ROLLUP: a.HealthRollup,
    MAINTENANCE_RECOMMENDED: a.MaintenanceRecommended,
}
"""Every kind of the catalogue and the model of its attributes."""

ALARM_KINDS: Final = frozenset(
    {
        ALARM_RAISED,
        ALARM_ACKNOWLEDGED,
        ALARM_RETURNED,
        ALARM_CLEARED,
        ALARM_SHELVED,
        ALARM_UNSHELVED,
        ALARM_SUPPRESSED,
        ALARM_UNSUPPRESSED,
        ALARM_CONDITION,
        ALARM_CHATTERING,
    }
)
OPERATOR_ACTIONS: Final[Mapping[str, str]] = {
    ALARM_ACKNOWLEDGED: "acknowledge",
    ALARM_SHELVED: "shelve",
    ALARM_UNSHELVED: "unshelve",
    SETPOINT_REQUESTED: "write",
}
"""Events that are an operator's action when they carry the operator's ``user``, and the action's name
(``operator_action`` events name their own ``action``)."""

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CUSTOM_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,63}$")


class InvalidAttributes(ValueError):
    """An event's kind is unknown or its attributes do not fit the kind.

    ``problems`` lists ``(field, message)``; ``field`` is ``kind`` or ``attributes.<path>``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))


def is_custom_kind(kind: str) -> bool:
    """Whether ``kind`` is a namespaced kind of another system (``mes.order_released``)."""
    return bool(_CUSTOM_KIND.match(kind))


def model_for(kind: str) -> type[a.Attributes] | None:
    """The attribute model of a catalogue kind; ``None`` for a custom kind.

    Raises :class:`InvalidAttributes` for a kind that is neither (with a suggestion).
    """
    model = KINDS.get(kind)
    if model is not None or is_custom_kind(kind):
        return model
    if not _KIND.match(kind):
        message = f"{kind!r:.80} is not a kind: lower case letters, digits and '_', or '<namespace>.<name>'"
    else:
        close = difflib.get_close_matches(kind, list(KINDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (other systems' kinds take a prefix: 'mes.<name>')"
        message = f"unknown kind {kind!r}{hint}"
    raise InvalidAttributes([("kind", message)])


def validate_attributes(kind: str, attributes: Mapping[str, Any]) -> BaseModel | None:
    """Check ``attributes`` against the model of ``kind``; return the parsed model (``None`` for a custom kind).

    ``session_id``, when present, must be a non-empty string and is not passed to the model.
    Raises :class:`InvalidAttributes` naming each bad field (``attributes.duration_s``).
    """
    model = model_for(kind)
    problems: list[tuple[str, str]] = []
    if not isinstance(attributes, Mapping):
        raise InvalidAttributes([("attributes", "must be a JSON object")])
    rest = dict(attributes)
    in_model = model is not None and SESSION_ID in model.model_fields
    session = None if in_model else rest.pop(SESSION_ID, None)
    if session is not None and (not isinstance(session, str) or not 0 < len(session) <= 256):
        problems.append((f"attributes.{SESSION_ID}", "must be a non-empty string of at most 256 characters"))
    if model is None:
        if problems:
            raise InvalidAttributes(problems)
        return None
    try:
        parsed = model.model_validate(rest)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            where = ".".join(str(part) for part in err["loc"])
            problems.append((f"attributes.{where}" if where else "attributes", _message(err, model)))
        raise InvalidAttributes(problems) from None
    if problems:
        raise InvalidAttributes(problems)
    return parsed


def _message(err: Any, model: type[a.Attributes]) -> str:
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(err["loc"][-1]), list(model.model_fields), n=1)
        return f"unknown attribute (did you mean {close[0]!r}?)" if close else "unknown attribute"
    if err["type"] == "missing":
        return "required"
    return str(err["msg"])
