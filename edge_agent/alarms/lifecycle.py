"""The ISA-18.2 lifecycle of one alarm as pure functions.

Each function takes an :class:`~edge_agent.alarms.model.Alarm` and the instant
``now`` and returns a :class:`Transition`: the new alarm and the events the
transition caused (kinds below, attributes: ``alarm_id``, ``tag``, ``priority``,
``condition``, ``source``, ``user``, ``state``, ``previous``, ``value``,
``limit``, ``message``, ``note``, ``chattering``).

=========================  ================================================
``alarm_raised``           the condition became active (NORMAL/RTN_UNACK -> UNACK)
``alarm_acknowledged``     an operator acknowledged (UNACK -> ACKED, RTN_UNACK -> NORMAL)
``alarm_returned``         the condition cleared before acknowledgement (UNACK -> RTN_UNACK)
``alarm_cleared``          the condition cleared after acknowledgement (ACKED -> NORMAL)
``alarm_shelved``          an operator shelved it until ``until``
``alarm_unshelved``        shelving ended (by an operator or expiry)
``alarm_suppressed``       suppressed by design (the machine is in a planned stop)
``alarm_unsuppressed``     suppression ended
``alarm_condition``        the condition changed while shelved or suppressed (journal only)
``alarm_chattering``       the alarm was raised ``raises`` times within ``window_s`` (or stopped doing so)
=========================  ================================================

Functions that an operator calls raise :class:`AlarmRefused` when they do not apply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from edge_agent.alarms.model import Alarm, AlarmRefused, AlarmState
from edge_agent.model import Event, Value

__all__ = [
    "ChatterRule",
    "Transition",
    "acknowledge",
    "activate",
    "deactivate",
    "expire",
    "shelve",
    "suppress",
    "unshelve",
    "unsuppress",
]


@dataclass(frozen=True, slots=True)
class ChatterRule:
    """An alarm raised ``raises`` times within ``window_s`` seconds is chattering."""

    raises: int = 3
    window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Transition:
    alarm: Alarm
    events: tuple[Event, ...] = ()


def _event(kind: str, alarm: Alarm, previous: Alarm, now: float, user: str | None = None, **extra: Any) -> Event:
    attrs: dict[str, Any] = {
        "alarm_id": alarm.id, "tag": alarm.tag, "priority": alarm.priority, "condition": alarm.condition,
        "source": alarm.source, "user": user, "state": alarm.status, "previous": previous.status,
        "value": alarm.value, "limit": alarm.limit, "message": alarm.message, "chattering": alarm.chattering,
    }
    attrs.update(extra)
    return Event(alarm.device, kind, attrs, ts=now)


def _hidden(alarm: Alarm) -> str | None:
    if alarm.shelved:
        return "shelved"
    if alarm.suppressed:
        return "suppressed"
    return None


def _raise(alarm: Alarm, previous: Alarm, now: float, rule: ChatterRule, **extra: Any) -> Transition:
    raises = (*(t for t in alarm.raises if now - t < rule.window_s), now)[-rule.raises:]
    chattering = len(raises) >= rule.raises
    new = replace(alarm, state=AlarmState.UNACK, raised_at=now, acked_at=None, acked_by=None, ack_note="",
                  occurrences=alarm.occurrences + 1, raises=raises, chattering=chattering, updated_at=now)
    events = [_event("alarm_raised", new, previous, now, **extra)]
    if chattering and not alarm.chattering:
        events.append(_event("alarm_chattering", new, previous, now, raises=len(raises), window_s=rule.window_s))
    return Transition(new, tuple(events))


def activate(alarm: Alarm, now: float, value: Value | None = None, limit: float | None = None,
             rule: ChatterRule = ChatterRule()) -> Transition:
    """The process condition is present (again); a repeat while active only updates the value."""
    limit = alarm.limit if limit is None else limit
    if alarm.active:
        return Transition(replace(alarm, value=value, limit=limit))
    active = replace(alarm, active=True, value=value, limit=limit, updated_at=now)
    hidden = _hidden(alarm)
    if hidden is not None:
        return Transition(active, (_event("alarm_condition", active, alarm, now, active=True, hidden_by=hidden),))
    return _raise(active, alarm, now, rule)


def deactivate(alarm: Alarm, now: float, value: Value | None = None) -> Transition:
    """The process condition is gone."""
    if not alarm.active:
        return Transition(alarm)
    inactive = replace(alarm, active=False, value=value if value is not None else alarm.value, cleared_at=now,
                       updated_at=now)
    hidden = _hidden(alarm)
    if hidden is not None:
        return Transition(inactive, (_event("alarm_condition", inactive, alarm, now, active=False,
                                            hidden_by=hidden),))
    if alarm.state == AlarmState.UNACK:
        new = replace(inactive, state=AlarmState.RTN_UNACK)
        return Transition(new, (_event("alarm_returned", new, alarm, now),))
    new = replace(inactive, state=AlarmState.NORMAL)
    return Transition(new, (_event("alarm_cleared", new, alarm, now),))


def acknowledge(alarm: Alarm, now: float, user: str, note: str = "") -> Transition:
    """An operator acknowledges: UNACK -> ACKED, RTN_UNACK -> NORMAL."""
    hidden = _hidden(alarm)
    if hidden is not None:
        raise AlarmRefused(f"alarm {alarm.id} is {hidden}: nothing to acknowledge")
    if alarm.state == AlarmState.UNACK:
        state = AlarmState.ACKED
    elif alarm.state == AlarmState.RTN_UNACK:
        state = AlarmState.NORMAL
    else:
        raise AlarmRefused(f"alarm {alarm.id} is {alarm.state.value}: nothing to acknowledge")
    new = replace(alarm, state=state, acked_at=now, acked_by=user, ack_note=note, updated_at=now)
    return Transition(new, (_event("alarm_acknowledged", new, alarm, now, user=user, note=note),))


def shelve(alarm: Alarm, now: float, user: str, duration_s: float, note: str = "") -> Transition:
    """Take the alarm out of annunciation until ``now + duration_s`` (again: a new end)."""
    if not duration_s > 0:
        raise AlarmRefused("shelving needs a duration > 0 s")
    until = now + duration_s
    new = replace(alarm, state=AlarmState.NORMAL, shelved_until=until, shelved_by=user, shelve_note=note,
                  updated_at=now)
    return Transition(new, (_event("alarm_shelved", new, alarm, now, user=user, note=note, until=until,
                                   duration_s=duration_s),))


def unshelve(alarm: Alarm, now: float, user: str | None = None, rule: ChatterRule = ChatterRule()) -> Transition:
    """End shelving (``user`` None: it expired); an active condition is raised again."""
    if not alarm.shelved:
        raise AlarmRefused(f"alarm {alarm.id} is not shelved")
    back = replace(alarm, shelved_until=None, shelved_by=None, shelve_note="", updated_at=now)
    events = [_event("alarm_unshelved", back, alarm, now, user=user, expired=user is None)]
    if back.active and not back.suppressed:
        raised = _raise(back, back, now, rule, after="unshelved")
        return Transition(raised.alarm, (*events, *raised.events))
    return Transition(back, tuple(events))


def suppress(alarm: Alarm, now: float, reason: str) -> Transition:
    """Suppress by design (the machine is in a planned stop); no-op when already suppressed."""
    if alarm.suppressed:
        return Transition(alarm)
    new = replace(alarm, state=AlarmState.NORMAL, suppressed=True, updated_at=now)
    return Transition(new, (_event("alarm_suppressed", new, alarm, now, reason=reason),))


def unsuppress(alarm: Alarm, now: float, rule: ChatterRule = ChatterRule()) -> Transition:
    """End suppression; an active condition is raised again (unless shelved)."""
    if not alarm.suppressed:
        return Transition(alarm)
    back = replace(alarm, suppressed=False, updated_at=now)
    events = [_event("alarm_unsuppressed", back, alarm, now)]
    if back.active and not back.shelved:
        raised = _raise(back, back, now, rule, after="unsuppressed")
        return Transition(raised.alarm, (*events, *raised.events))
    return Transition(back, tuple(events))


def expire(alarm: Alarm, now: float, rule: ChatterRule = ChatterRule()) -> Transition:
    """Time passing: shelving that has run out ends, a chattering flag with too few recent raises drops."""
    events: list[Event] = []
    if alarm.shelved_until is not None and now >= alarm.shelved_until:
        done = unshelve(alarm, now, None, rule)
        alarm, events = done.alarm, list(done.events)
    if alarm.chattering:
        recent = tuple(t for t in alarm.raises if now - t < rule.window_s)
        if len(recent) < rule.raises:
            calm = replace(alarm, chattering=False, raises=recent, updated_at=now)
            events.append(_event("alarm_chattering", calm, alarm, now, raises=len(recent), window_s=rule.window_s))
            alarm = calm
    return Transition(alarm, tuple(events))
