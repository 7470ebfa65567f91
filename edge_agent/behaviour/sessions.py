"""Sessions, computed incrementally from events: machine runs and operator sessions on the status page.

* A **run session** of a machine starts when its state becomes ``running`` and
  ends at the next stop that is not a micro-stop: an unplanned stop shorter than
  ``micro_stop_s`` (the machine runs again in time) stays inside the session and
  is counted in ``stops``; any planned stop, changeover or excluded state ends it
  at once. Parts counted (``part_count``) while it is open belong to it.
* An **operator session** (per ``user``) starts at ``operator_login`` and ends at
  ``operator_logout``, at a new login of the same user (``replaced``), or
  ``idle_s`` (30 min) after the user's last login or action (``idle``; it then
  ends at that instant, when the status page logs the user out). Actions are the
  events of :data:`~edge_agent.behaviour.kinds.OPERATOR_ACTIONS` (acknowledge,
  shelve, unshelve, write) and ``operator_action`` events that carry the user.

When a session closes, :class:`SessionTracker` returns its summary event
(``run_session`` or ``operator_session``) with a deterministic id, so that
computing the same sessions again yields the same events. Time comes only from
the events and from :meth:`SessionTracker.advance`: feed events in time order
and call ``advance(now)`` now and then to close sessions that timed out.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.behaviour import kinds as k
from edge_agent.model import Event

__all__ = ["SessionOptions", "SessionTracker", "sessions", "summary_id"]

_NAMESPACE = uuid.UUID("5b0f6f0e-8c1d-4c53-9d0e-6a1f0d2f6c11")


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """``micro_stop_s``: unplanned stops shorter than this stay inside a run session;
    ``idle_s``: an operator without action for this long is logged out."""

    micro_stop_s: float = 120.0
    idle_s: float = 1800.0


def summary_id(session_id: str) -> str:
    """The id of a session's summary event: the same for the same session, every time."""
    return uuid.uuid5(_NAMESPACE, session_id).hex


def _millis(ts: float) -> int:
    return round(ts * 1000)


@dataclass
class _Run:
    session_id: str
    started_at: float
    good: int = 0
    scrap: int = 0
    stops: int = 0
    stop_at: float | None = None  # an unplanned stop in progress that may still be a micro-stop


@dataclass
class _Operator:
    session_id: str
    user: str
    position: str | None
    started_at: float
    last_activity: float
    actions: Counter[str] = field(default_factory=Counter)


class SessionTracker:
    """Open sessions of every device and operator; turns events into session summaries."""

    def __init__(self, options: SessionOptions | None = None) -> None:
        self.options = options or SessionOptions()
        self._runs: dict[str, _Run] = {}
        self._operators: dict[str, _Operator] = {}

    # -- reading ----------------------------------------------------------------------------

    def session_for(self, event: Event) -> str | None:
        """The id of the open session ``event`` belongs to (an operator's, for events with an operator's
        ``user``; else a machine's run), if any."""
        user = event.attributes.get("user")
        if isinstance(user, str) and user in self._operators:
            return self._operators[user].session_id
        run = self._runs.get(event.device)
        return run.session_id if run is not None else None

    def open_sessions(self) -> dict[str, list[str]]:
        """Ids of the open sessions: ``{"run": [...], "operator": [...]}``."""
        return {
            "run": sorted(r.session_id for r in self._runs.values()),
            "operator": sorted(o.session_id for o in self._operators.values()),
        }

    # -- feeding ----------------------------------------------------------------------------

    def feed(self, event: Event) -> list[Event]:
        """Apply one event (after closing what timed out before it); return the summaries of closed sessions."""
        out = self.advance(event.ts)
        attrs = event.attributes
        if event.kind == k.STATE_CHANGED:
            out.extend(self._state(event.device, attrs.get("state"), event.ts))
        elif event.kind == k.PART_COUNT:
            run = self._runs.get(event.device)
            if run is not None:
                run.good += _count(attrs.get("good"))
                run.scrap += _count(attrs.get("scrap"))
        elif event.kind == k.OPERATOR_LOGIN:
            out.extend(self._login(event))
        elif event.kind == k.OPERATOR_LOGOUT:
            out.extend(self._logout(event))
        elif event.kind == k.OPERATOR_ACTION or event.kind in k.OPERATOR_ACTIONS:
            session = self._operators.get(str(attrs.get("user")))
            if session is not None:
                action = attrs.get("action") if event.kind == k.OPERATOR_ACTION else k.OPERATOR_ACTIONS[event.kind]
                session.actions[str(action)] += 1
                session.last_activity = max(session.last_activity, event.ts)
        return out

    def advance(self, now: float) -> list[Event]:
        """Close the sessions that timed out by ``now``: runs whose stop outlasted a micro-stop, idle operators."""
        out: list[Event] = []
        limit = self.options.micro_stop_s
        for device, run in sorted(self._runs.items()):
            if run.stop_at is not None and now - run.stop_at >= limit:
                out.append(self._end_run(device, run.stop_at, "stop", "unplanned_stop"))
        for name, session in sorted(self._operators.items()):
            expires = session.last_activity + self.options.idle_s
            if expires <= now:
                out.append(self._end_operator(name, expires, "idle"))
        return out

    def flush(self, now: float) -> list[Event]:
        """Close every open session at ``now`` (the agent stops): runs end with ``end_of_data``."""
        out = self.advance(now)
        for device, run in sorted(self._runs.items()):
            end = run.stop_at if run.stop_at is not None else now
            out.append(self._end_run(device, end, "end_of_data", None))
        for name in sorted(self._operators):
            out.append(self._end_operator(name, now, "logout"))
        return out

    # -- machines ---------------------------------------------------------------------------

    def _state(self, device: str, state: Any, ts: float) -> list[Event]:
        run = self._runs.get(device)
        if state == "running":
            if run is None:
                self._runs[device] = _Run(f"run:{device}:{_millis(ts)}", ts)
            elif run.stop_at is not None:  # restarted within the micro-stop limit (advance ran at ts)
                run.stops += 1
                run.stop_at = None
            return []
        if run is None or not isinstance(state, str):
            return []
        if state != "unplanned_stop":
            return [self._end_run(device, run.stop_at if run.stop_at is not None else ts, "stop", state)]
        if run.stop_at is None:
            run.stop_at = ts
        return []

    def _end_run(self, device: str, end: float, reason: str, category: str | None) -> Event:
        run = self._runs.pop(device)
        attributes: dict[str, Any] = {
            "session_id": run.session_id,
            "started_at": run.started_at,
            "ended_at": end,
            "duration_s": max(0.0, end - run.started_at),
            "good": run.good,
            "scrap": run.scrap,
            "stops": run.stops,
            "end_reason": reason,
            "stop_category": category,
        }
        return Event(device, k.RUN_SESSION, attributes, end, summary_id(run.session_id))

    # -- operators --------------------------------------------------------------------------

    def _login(self, event: Event) -> list[Event]:
        attrs = event.attributes
        name = attrs.get("user")
        if not isinstance(name, str):
            return []
        out = [self._end_operator(name, event.ts, "replaced")] if name in self._operators else []
        given = attrs.get(k.SESSION_ID)
        session_id = given if isinstance(given, str) and given else f"op:{name}:{_millis(event.ts)}"
        position = attrs.get("position")
        self._operators[name] = _Operator(
            session_id, name, position if isinstance(position, str) else None, event.ts, event.ts
        )
        return out

    def _logout(self, event: Event) -> list[Event]:
        name = event.attributes.get("user")
        if not isinstance(name, str) or name not in self._operators:
            return []
        reason = "idle" if event.attributes.get("reason") == "idle" else "logout"
        return [self._end_operator(name, event.ts, reason)]

    def _end_operator(self, name: str, end: float, reason: str) -> Event:
        s = self._operators.pop(name)
        attributes: dict[str, Any] = {
            "session_id": s.session_id,
            "user": s.user,
            "position": s.position,
            "started_at": s.started_at,
            "ended_at": end,
            "duration_s": max(0.0, end - s.started_at),
            "actions": sum(s.actions.values()),
            "actions_by_type": dict(sorted(s.actions.items())),
            "end_reason": reason,
        }
        return Event(k.GATEWAY_DEVICE, k.OPERATOR_SESSION, attributes, end, summary_id(s.session_id))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def sessions(events: Iterable[Event], now: float, options: SessionOptions | None = None) -> list[Event]:
    """The summaries of every session that closed by ``now``, over events in any order.

    Events are taken in ``(ts, id)`` order; duplicates (same id) count once.
    Sessions still open at ``now`` have no summary yet.
    """
    tracker = SessionTracker(options)
    seen: set[str] = set()
    out: list[Event] = []
    for event in sorted(events, key=lambda e: (e.ts, e.id)):
        if event.id in seen or event.ts > now:
            continue
        seen.add(event.id)
        out.extend(tracker.feed(event))
    out.extend(tracker.advance(now))
    return out
