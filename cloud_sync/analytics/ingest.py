"""Checking events posted to the collector one by one: good ones are kept, bad ones rejected with reasons.

Each event must fit the envelope and its kind's attributes (``docs/events.md``,
:func:`edge_agent.behaviour.envelope.parse_event`). The gateway it is stored
under is its ``gateway`` field or, when absent, the gateway of the API key; a
key bound to a gateway may post only for that gateway, a key for any gateway
must name one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cloud_sync.analytics.api_models import EventProblem, EventRejection
from edge_agent.behaviour.envelope import EventEnvelope, InvalidEvent, parse_event

__all__ = ["Checked", "check_events"]


@dataclass
class Checked:
    """The events that passed (with their index in the request and their gateway set) and the rejections."""

    accepted: list[tuple[int, EventEnvelope]] = field(default_factory=list)
    rejected: list[EventRejection] = field(default_factory=list)


def _id_of(item: Any) -> str | None:
    value = item.get("id") if isinstance(item, dict) else None
    return value[:128] if isinstance(value, str) else None


def check_events(items: Sequence[Any], key_gateway: str | None) -> Checked:
    """Check every item; ``key_gateway`` is the gateway the API key is bound to (``None``: any)."""
    out = Checked()
    for index, item in enumerate(items):
        try:
            envelope = parse_event(item)
        except InvalidEvent as exc:
            problems = [EventProblem(field=f, message=m) for f, m in exc.problems]
            out.rejected.append(EventRejection(index=index, id=_id_of(item), errors=problems))
            continue
        gateway = envelope.gateway or key_gateway
        problem = None
        if gateway is None:
            problem = "required: this API key may post for any gateway, so each event must name one"
        elif key_gateway is not None and gateway != key_gateway:
            problem = f"this API key may post events only for gateway {key_gateway!r}"
        if problem is not None:
            error = EventProblem(field="gateway", message=problem)
            out.rejected.append(EventRejection(index=index, id=envelope.id, errors=[error]))
            continue
        out.accepted.append((index, envelope.model_copy(update={"gateway": gateway})))
    return out
