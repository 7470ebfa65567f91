"""The ISA-18.2 lifecycle as a pure state machine: every transition, by hand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from edge_agent.alarms import (
    Alarm,
    AlarmRefused,
    AlarmState,
    ChatterRule,
    Transition,
    acknowledge,
    activate,
    deactivate,
    expire,
    shelve,
    suppress,
    unshelve,
    unsuppress,
)

A = Alarm("cnc-1:spindle_temp:hi", "cnc-1", "spindle_temp", "limit", "hi", "medium", "Spindle temp above HI limit 60",
          limit=60.0)


def kinds(t: Transition) -> list[str]:
    return [e.kind for e in t.events]


def at(state: AlarmState, active: bool, **kw: object) -> Alarm:
    return replace(A, state=state, active=active, **kw)  # type: ignore[arg-type]


NORMAL, UNACK, ACKED, RTN = AlarmState.NORMAL, AlarmState.UNACK, AlarmState.ACKED, AlarmState.RTN_UNACK

# (start state, condition active, action, expected state, expected active, expected event kinds)
TRANSITIONS: list[tuple[AlarmState, bool, str, AlarmState, bool, list[str]]] = [
    (NORMAL, False, "activate", UNACK, True, ["alarm_raised"]),
    (UNACK, True, "ack", ACKED, True, ["alarm_acknowledged"]),
    (UNACK, True, "deactivate", RTN, False, ["alarm_returned"]),
    (ACKED, True, "deactivate", NORMAL, False, ["alarm_cleared"]),
    (RTN, False, "ack", NORMAL, False, ["alarm_acknowledged"]),
    (RTN, False, "activate", UNACK, True, ["alarm_raised"]),
    (UNACK, True, "activate", UNACK, True, []),  # still active: only the value moves
    (ACKED, True, "activate", ACKED, True, []),
    (NORMAL, False, "deactivate", NORMAL, False, []),
    (RTN, False, "deactivate", RTN, False, []),
]
ACTIONS: dict[str, Callable[[Alarm], Transition]] = {
    "activate": lambda a: activate(a, 100.0, 63.0),
    "deactivate": lambda a: deactivate(a, 100.0, 55.0),
    "ack": lambda a: acknowledge(a, 100.0, "olga", "coolant topped up"),
}


@pytest.mark.parametrize(("start", "active", "action", "state", "now_active", "events"), TRANSITIONS)
def test_transition(start: AlarmState, active: bool, action: str, state: AlarmState, now_active: bool,
                    events: list[str]) -> None:
    t = ACTIONS[action](at(start, active))
    assert (t.alarm.state, t.alarm.active, kinds(t)) == (state, now_active, events)
    for e in t.events:
        assert e.device == "cnc-1" and e.ts == 100.0
        assert e.attributes["alarm_id"] == A.id and e.attributes["tag"] == "spindle_temp"
        assert e.attributes["priority"] == "medium"
        assert e.attributes["previous"] == start.value and e.attributes["state"] == state.value


@pytest.mark.parametrize("start", [NORMAL, ACKED])
def test_acknowledging_nothing_is_refused(start: AlarmState) -> None:
    with pytest.raises(AlarmRefused, match="nothing to acknowledge"):
        acknowledge(at(start, start == ACKED), 1.0, "olga")


def test_raise_records_time_value_and_occurrence_and_clears_the_last_ack() -> None:
    t = activate(at(RTN, False, acked_by="olga", acked_at=5.0, occurrences=1), 50.0, 64.2)
    a = t.alarm
    assert (a.raised_at, a.value, a.occurrences, a.acked_by, a.acked_at) == (50.0, 64.2, 2, None, None)
    assert t.events[0].attributes["value"] == 64.2 and t.events[0].attributes["user"] is None


def test_ack_records_who_and_note() -> None:
    t = acknowledge(at(UNACK, True), 70.0, "olga", "coolant topped up")
    assert (t.alarm.acked_by, t.alarm.acked_at, t.alarm.ack_note) == ("olga", 70.0, "coolant topped up")
    assert t.events[0].attributes["user"] == "olga" and t.events[0].attributes["note"] == "coolant topped up"


# -- shelving -------------------------------------------------------------------------------------


def test_shelve_hides_the_alarm_and_condition_changes_are_only_journaled() -> None:
    t = shelve(at(UNACK, True), 10.0, "olga", 600.0, "sensor being replaced")
    a = t.alarm
    assert (a.status, a.shelved_until, a.shelved_by, a.state) == ("shelved", 610.0, "olga", NORMAL)
    assert kinds(t) == ["alarm_shelved"] and t.events[0].attributes["until"] == 610.0
    cleared = deactivate(a, 20.0)
    assert kinds(cleared) == ["alarm_condition"] and cleared.events[0].attributes["hidden_by"] == "shelved"
    assert cleared.alarm.state == NORMAL and not cleared.alarm.active
    with pytest.raises(AlarmRefused, match="shelved"):
        acknowledge(a, 30.0, "olga")


def test_shelving_ends_by_expiry_and_raises_again_if_the_condition_is_present() -> None:
    a = shelve(at(ACKED, True), 0.0, "olga", 60.0).alarm
    assert kinds(expire(a, 59.0)) == []
    t = expire(a, 60.0)
    assert kinds(t) == ["alarm_unshelved", "alarm_raised"]
    assert t.events[0].attributes["expired"] is True and t.events[0].attributes["user"] is None
    assert t.alarm.state == UNACK and not t.alarm.shelved
    assert t.events[1].attributes["after"] == "unshelved"


def test_unshelve_by_an_operator_with_the_condition_gone_is_normal() -> None:
    a = shelve(at(UNACK, False), 0.0, "olga", 60.0).alarm
    t = unshelve(a, 10.0, "victor")
    assert kinds(t) == ["alarm_unshelved"] and t.alarm.state == NORMAL and t.alarm.status == "normal"
    assert t.events[0].attributes["user"] == "victor"
    with pytest.raises(AlarmRefused, match="not shelved"):
        unshelve(t.alarm, 11.0, "victor")


def test_shelve_needs_a_duration_and_may_be_extended() -> None:
    with pytest.raises(AlarmRefused):
        shelve(A, 0.0, "olga", 0)
    a = shelve(A, 0.0, "olga", 60.0).alarm
    assert shelve(a, 30.0, "olga", 600.0).alarm.shelved_until == 630.0


# -- suppression ---------------------------------------------------------------------------------


def test_suppression_in_a_planned_stop_and_back() -> None:
    t = suppress(at(UNACK, True), 0.0, "planned_stop")
    assert kinds(t) == ["alarm_suppressed"] and t.alarm.status == "suppressed" and t.events[0].attributes[
        "reason"] == "planned_stop"
    assert kinds(suppress(t.alarm, 1.0, "planned_stop")) == []  # already suppressed
    raised_hidden = activate(deactivate(t.alarm, 2.0).alarm, 3.0, 70.0)
    assert kinds(raised_hidden) == ["alarm_condition"] and raised_hidden.alarm.state == NORMAL
    back = unsuppress(raised_hidden.alarm, 4.0)
    assert kinds(back) == ["alarm_unsuppressed", "alarm_raised"] and back.alarm.state == UNACK
    quiet = unsuppress(suppress(at(NORMAL, False), 5.0, "planned_stop").alarm, 6.0)
    assert kinds(quiet) == ["alarm_unsuppressed"] and quiet.alarm.state == NORMAL
    assert kinds(unsuppress(A, 7.0)) == []


def test_a_shelved_alarm_is_not_raised_when_suppression_ends() -> None:
    a = suppress(shelve(at(NORMAL, True), 0.0, "olga", 600.0).alarm, 1.0, "planned_stop").alarm
    assert kinds(unsuppress(a, 2.0)) == ["alarm_unsuppressed"]


def test_needs_attention() -> None:
    assert not A.needs_attention
    assert at(UNACK, True).needs_attention and at(ACKED, True).needs_attention and at(RTN, False).needs_attention
    assert replace(A, shelved_until=5.0).needs_attention
    assert replace(A, suppressed=True, active=True).needs_attention
    assert not replace(A, suppressed=True, active=False).needs_attention


# -- chattering ----------------------------------------------------------------------------------


def test_three_raises_within_sixty_seconds_flag_chattering_and_it_ends_when_calm() -> None:
    rule = ChatterRule(raises=3, window_s=60.0)
    a = A
    seen: list[list[str]] = []
    for ts in (0.0, 20.0, 40.0):
        t = activate(a, ts, 61.0, rule=rule)
        seen.append(kinds(t))
        a = acknowledge(deactivate(t.alarm, ts + 5).alarm, ts + 6, "olga").alarm
    assert seen == [["alarm_raised"], ["alarm_raised"], ["alarm_raised", "alarm_chattering"]]
    assert a.chattering and a.raises == (0.0, 20.0, 40.0)
    assert kinds(expire(a, 59.0, rule)) == []  # all three raises within the last 60 s
    calm = expire(a, 60.0, rule)  # the raise at 0 s left the window
    assert kinds(calm) == ["alarm_chattering"] and not calm.alarm.chattering
    assert calm.events[0].attributes["chattering"] is False


def test_raises_spread_out_do_not_chatter() -> None:
    a = A
    for ts in (0.0, 61.0, 122.0):
        t = activate(a, ts, 61.0)
        assert "alarm_chattering" not in kinds(t)
        a = deactivate(t.alarm, ts + 1).alarm
    assert not a.chattering
