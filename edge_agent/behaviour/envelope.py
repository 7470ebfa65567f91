"""The versioned event envelope (schema version 1) and its checks.

An event is ``(id, ts, gateway, device, kind, session_id, attributes)``. On the
agent an :class:`~edge_agent.model.Event` has no gateway (the gateway is the
batch's ``gateway_id``) and carries ``session_id`` as an attribute; on the sync
wire and in the collector's ``events`` table it is the same. :class:`EventEnvelope`
is the form other systems post to the collector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from edge_agent.behaviour.kinds import EVENT_SCHEMA_VERSION, SESSION_ID, InvalidAttributes, validate_attributes
from edge_agent.model import Event

__all__ = [
    "MAX_ATTRIBUTES_BYTES",
    "EventEnvelope",
    "InvalidEvent",
    "envelope_of",
    "event_of",
    "parse_event",
    "stored_attributes",
]

MAX_ATTRIBUTES_BYTES = 65_536
"""The largest attributes object, as compact JSON."""

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
GatewayId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]


class EventEnvelope(BaseModel):
    """One event in schema version 1 (``docs/events.md``); strict: ``"5"`` is not a number, ``true`` not 1."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1] = EVENT_SCHEMA_VERSION
    id: EventId = Field(description="unique per event; a re-sent event with the same id is stored once")
    ts: float = Field(gt=0, allow_inf_nan=False, description="epoch seconds (UTC) when it happened")
    gateway: GatewayId | None = Field(None, description="the gateway or source system; default: the key's gateway")
    device: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    kind: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    session_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    attributes: dict[str, Any] = {}

    @field_validator("schema_version", mode="before")
    @classmethod
    def _not_a_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):  # True == 1 in Python; not in the schema
            raise ValueError("Input should be 1")
        return value


class InvalidEvent(ValueError):
    """An event that does not fit the schema; ``problems`` lists ``(field, message)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))


def parse_event(data: Any) -> EventEnvelope:
    """Check one posted event: the envelope, then its attributes against its kind.

    Raises :class:`InvalidEvent` naming every bad field (``ts``, ``attributes.duration_s``).
    """
    if not isinstance(data, Mapping):
        raise InvalidEvent([("event", "must be a JSON object")])
    try:
        envelope = EventEnvelope.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(
            [(".".join(str(p) for p in err["loc"]) or "event", _describe(err)) for err in exc.errors(include_url=False)]
        ) from None
    problems: list[tuple[str, str]] = []
    carried = envelope.attributes.get(SESSION_ID)
    if carried is not None and envelope.session_id is not None and carried != envelope.session_id:
        problems.append((f"attributes.{SESSION_ID}", "differs from session_id"))
    try:
        validate_attributes(envelope.kind, envelope.attributes)
    except InvalidAttributes as exc:
        problems.extend(exc.problems)
    if not problems and len(orjson.dumps(envelope.attributes)) > MAX_ATTRIBUTES_BYTES:
        problems.append(("attributes", f"larger than {MAX_ATTRIBUTES_BYTES} bytes as JSON"))
    if problems:
        raise InvalidEvent(problems)
    return envelope


def stored_attributes(envelope: EventEnvelope) -> dict[str, Any]:
    """The attributes as stored and synced: the envelope's ``session_id`` folded in."""
    if envelope.session_id is None:
        return dict(envelope.attributes)
    return {**envelope.attributes, SESSION_ID: envelope.session_id}


def event_of(envelope: EventEnvelope) -> Event:
    """The agent's :class:`~edge_agent.model.Event` for an envelope (the gateway is dropped)."""
    return Event(envelope.device, envelope.kind, stored_attributes(envelope), envelope.ts, envelope.id)


def envelope_of(event: Event, gateway: str | None = None) -> EventEnvelope:
    """The envelope of an agent event; ``session_id`` is taken from its attributes."""
    session = event.attributes.get(SESSION_ID)
    attributes = {k: v for k, v in event.attributes.items() if k != SESSION_ID}
    return EventEnvelope(
        id=event.id,
        ts=event.ts,
        gateway=gateway,
        device=event.device,
        kind=event.kind,
        session_id=session if isinstance(session, str) else None,
        attributes=attributes,
    )


def _describe(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required"
    return str(err["msg"])
