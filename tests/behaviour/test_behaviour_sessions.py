"""Run and operator sessions: hand-built event sets, expected summaries written out."""

from __future__ import annotations

import itertools
import random
from typing import Any

from edge_agent.behaviour import SessionTracker, sessions, summary_id, validate_attributes
from edge_agent.model import Event

T = 1_763_510_400.0  # 2025-11-19T00:00:00Z


_ids = itertools.count(1)


def e(kind: str, at: float, device: str = "cnc-1", **attributes: Any) -> Event:
    return Event(device, kind, attributes, T + at, f"ev-{next(_ids)}")


MACHINE = [
    e("state_changed", 0, state="running"),
    e("part_count", 10, good=1, scrap=0),
    e("part_count", 20, good=1, scrap=0),
    e("part_count", 30, good=0, scrap=1),
    e("state_changed", 100, state="unplanned_stop"),
    e("state_changed", 150, state="running"),  # 50 s: a micro-stop, the run goes on
    e("part_count", 200, good=1, scrap=0),
    e("state_changed", 300, state="unplanned_stop"),
    e("state_changed", 600, state="running"),  # 300 s: the run ended at 300, a new one starts
    e("state_changed", 900, state="planned_stop"),  # planned: ends the run at once
    e("state_changed", 1000, state="running"),  # still open at the end
]

OPERATORS = [
    e("operator_login", 0, "_gateway", user="alice", role="operator", position="console-1", session_id="s-1"),
    e("operator_login", 0, "_gateway", user="carol"),
    e("operator_login", 50, "_gateway", user="carol"),
    e("alarm_acknowledged", 60, "cnc-1", alarm_id="cnc-1:temp:hi", user="alice", note=""),
    e("operator_login", 100, "_gateway", user="bob"),
    e("setpoint_requested", 120, "cnc-1", id="x1", tag="speed", value=3, user="alice"),
    e("operator_action", 200, "_gateway", user="alice", action="reset", target="cnc-1"),
    e("alarm_shelved", 200, "cnc-1", alarm_id="cnc-1:temp:hi", user="bob", until=T + 3800),
    e("alarm_acknowledged", 300, "cnc-1", alarm_id="cnc-2:temp:hi", user=None),  # no user: not an action
    e("operator_logout", 500, "_gateway", user="alice"),
    e("setpoint_requested", 700, "cnc-1", id="x2", tag="speed", value=3, user="mallory"),  # not logged in
]


def run_summary(start: float, end: float, **extra: Any) -> dict[str, Any]:
    session = f"run:cnc-1:{round((T + start) * 1000)}"
    return {
        "session_id": session,
        "started_at": T + start,
        "ended_at": T + end,
        "duration_s": end - start,
        "end_reason": "stop",
        **extra,
    }


def test_run_sessions() -> None:
    out = sessions(MACHINE, T + 2000)
    assert [s.kind for s in out] == ["run_session", "run_session"]
    first, second = (s.attributes for s in out)
    assert first == run_summary(0, 300, good=3, scrap=1, stops=1, stop_category="unplanned_stop")
    assert second == run_summary(600, 900, good=0, scrap=0, stops=0, stop_category="planned_stop")
    assert [s.ts for s in out] == [T + 300, T + 900]
    assert out[0].id == summary_id(first["session_id"])
    for s in out:
        validate_attributes(s.kind, s.attributes)


def test_a_stop_closes_the_run_once_it_outlasts_a_micro_stop() -> None:
    tracker = SessionTracker()
    for event in MACHINE[:8]:  # up to the stop at 300
        assert tracker.feed(event) == []
    assert tracker.advance(T + 419) == []
    closed = tracker.advance(T + 420)
    assert [s.attributes["ended_at"] for s in closed] == [T + 300]
    assert tracker.open_sessions() == {"run": [], "operator": []}


def test_operator_sessions() -> None:
    out = sessions(OPERATORS, T + 5000)
    by_operator = {(s.attributes["user"], s.attributes["end_reason"]): s.attributes for s in out}
    assert set(by_operator) == {("carol", "replaced"), ("alice", "logout"), ("bob", "idle"), ("carol", "idle")}
    alice = by_operator["alice", "logout"]
    assert alice == {
        "session_id": "s-1",
        "user": "alice",
        "position": "console-1",
        "started_at": T,
        "ended_at": T + 500,
        "duration_s": 500.0,
        "actions": 3,
        "actions_by_type": {"acknowledge": 1, "reset": 1, "write": 1},
        "end_reason": "logout",
    }
    bob = by_operator["bob", "idle"]
    assert (bob["started_at"], bob["ended_at"], bob["actions_by_type"]) == (T + 100, T + 2000, {"shelve": 1})
    assert by_operator["carol", "replaced"]["duration_s"] == 50.0
    assert by_operator["carol", "idle"]["ended_at"] == T + 50 + 1800
    for s in out:
        assert s.device == "_gateway"
        validate_attributes(s.kind, s.attributes)


def test_order_duplicates_and_advance_calls_do_not_change_the_summaries() -> None:
    events = MACHINE + OPERATORS
    expected = sessions(events, T + 5000)
    shuffled = events + events[:5]
    random.Random(7).shuffle(shuffled)
    assert sessions(shuffled, T + 5000) == expected
    tracker = SessionTracker()
    incremental: list[Event] = []
    rng = random.Random(3)
    for event in sorted(events, key=lambda x: (x.ts, x.id)):
        incremental += tracker.advance(event.ts - rng.uniform(0, 30))
        incremental += tracker.feed(event)
    incremental += tracker.advance(T + 5000)
    assert sorted(incremental, key=lambda s: s.id) == sorted(expected, key=lambda s: s.id)


def test_session_for_tags_events_with_their_session() -> None:
    tracker = SessionTracker()
    tracker.feed(MACHINE[0])
    tracker.feed(OPERATORS[0])
    assert tracker.session_for(MACHINE[1]) == f"run:cnc-1:{round(T * 1000)}"
    assert tracker.session_for(OPERATORS[3]) == "s-1"  # alice's acknowledgement
    assert tracker.session_for(e("part_count", 5, device="other", good=1, scrap=0)) is None


def test_flush_closes_everything() -> None:
    tracker = SessionTracker()
    for event in MACHINE + OPERATORS[:2]:
        tracker.feed(event)
    closed = tracker.flush(T + 1100)
    reasons = sorted((s.kind, s.attributes["end_reason"]) for s in closed)
    assert ("run_session", "end_of_data") in reasons
    assert tracker.open_sessions() == {"run": [], "operator": []}
