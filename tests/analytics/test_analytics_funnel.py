"""Funnel: the pure function on hand-built event sets (figures written out), then the SQL twin on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from analytics_testkit import T0, Db, ev

from cloud_sync.analytics import FunnelRequest, funnel, sql_funnel
from cloud_sync.analytics.records import StoredEvent

PARTS = [
    # p1: every step
    ev("part_loaded", 0, part_id="p1"),
    ev("part_machined", 60, part_id="p1"),
    ev("part_inspected", 100, part_id="p1", result="ok"),
    ev("part_packed", 200, part_id="p1"),
    # p2: inspected not OK
    ev("part_loaded", 10, part_id="p2"),
    ev("part_machined", 90, part_id="p2"),
    ev("part_inspected", 150, part_id="p2", result="nok"),
    # p3: skips machining and inspection, packed anyway
    ev("part_loaded", 20, part_id="p3"),
    ev("part_packed", 30, part_id="p3"),
    # 4 (an integer id): steps at the same instant count
    ev("part_loaded", 5, part_id=4),
    ev("part_machined", 5, part_id=4),
    ev("part_inspected", 6, part_id=4, result="ok"),
    ev("part_packed", 500, part_id=4),
    # p5: machined before it was loaded
    ev("part_machined", 40, part_id="p5"),
    ev("part_loaded", 45, part_id="p5"),
    # p6: arrives out of order, loaded twice, one event stored twice
    ev("part_packed", 400, part_id="p6"),
    ev("part_inspected", 300, part_id="p6", result="ok"),
    ev("part_machined", 250, part_id="p6"),
    ev("part_loaded", 200, part_id="p6", event_id="dup"),
    ev("part_loaded", 200, part_id="p6", event_id="dup"),
    ev("part_loaded", 210, part_id="p6"),
    # p7: loaded before the window, and loaded again at its end, machined after it
    ev("part_loaded", -10, part_id="p7"),
    ev("part_machined", 20, part_id="p7"),
    ev("part_loaded", 990, part_id="p7"),
    ev("part_machined", 1010, part_id="p7"),
    # not parts: no entity, wrong kind
    ev("part_loaded", 50),
    ev("part_loaded", 50, part_id=1.5),
    ev("part_loaded", 50, part_id=True),
    ev("stop_ended", 50, part_id="p1"),
]

STEPS: list[dict[str, Any]] = [
    {"kind": "part_loaded", "label": "loaded"},
    {"kind": "part_machined", "label": "machined"},
    {"kind": "part_inspected", "where": {"result": "ok"}, "label": "inspected OK"},
    {"kind": "part_packed", "label": "packed"},
]

ALARMS = [
    ev("alarm_raised", 0, occurrence_id="a1", alarm_id="temp.hi"),
    ev("alarm_acknowledged", 120, occurrence_id="a1", alarm_id="temp.hi"),
    ev("alarm_cleared", 600, occurrence_id="a1", alarm_id="temp.hi"),
    ev("alarm_raised", 100, occurrence_id="a2", alarm_id="press.lo"),
    ev("alarm_acknowledged", 500, occurrence_id="a2", alarm_id="press.lo"),  # 400 s: too late
    ev("alarm_cleared", 700, occurrence_id="a2", alarm_id="press.lo"),
    ev("alarm_raised", 200, occurrence_id="a3", alarm_id="temp.hi"),
    ev("alarm_cleared", 300, occurrence_id="a3", alarm_id="temp.hi"),  # cleared before it was acknowledged
    ev("alarm_acknowledged", 400, occurrence_id="a3", alarm_id="temp.hi"),
    ev("alarm_raised", 300, occurrence_id="a4", alarm_id="level.hi"),
    ev("alarm_acknowledged", 300, occurrence_id="a4", alarm_id="level.hi"),
    ev("alarm_cleared", 900, occurrence_id="a4", alarm_id="level.hi"),
]


def request(steps: list[dict[str, Any]] = STEPS, key: str = "part_id", **extra: Any) -> FunnelRequest:
    return FunnelRequest.model_validate({"from": T0, "to": T0 + 1000, "entity_key": key, "steps": steps, **extra})


def figures(result: Any) -> list[tuple[Any, ...]]:
    return [
        (s.entities, s.conversion_from_previous, s.conversion_from_first, s.drop_off, s.median_s, s.p90_s)
        for s in result.steps
    ]


def test_parts_funnel() -> None:
    result = funnel(PARTS, request())
    assert result.entities == 7
    assert [s.label for s in result.steps] == ["loaded", "machined", "inspected OK", "packed"]
    assert figures(result) == [
        (7, 1.0, 1.0, 0, None, None),
        (4, 4 / 7, 4 / 7, 3, 55.0, pytest.approx(74.0)),
        (3, 0.75, 3 / 7, 1, 40.0, pytest.approx(48.0)),
        (3, 1.0, 3 / 7, 0, 100.0, pytest.approx(415.2)),
    ]
    assert [s.drop_off_rate for s in result.steps] == [0.0, 3 / 7, 0.25, 0.0]


def test_max_step_gap() -> None:
    result = funnel(PARTS, request(max_step_gap_s=100))
    assert [s.entities for s in result.steps] == [7, 4, 3, 2]  # part 4 was packed 494 s after inspection


def test_alarm_acknowledged_within_five_minutes_then_cleared() -> None:
    steps: list[dict[str, Any]] = [
        {"kind": "alarm_raised"},
        {"kind": "alarm_acknowledged", "max_gap_s": 300},
        {"kind": "alarm_cleared"},
    ]
    result = funnel(ALARMS, request(steps, "occurrence_id"))
    assert figures(result) == [
        (4, 1.0, 1.0, 0, None, None),
        (3, 0.75, 0.75, 1, 120.0, pytest.approx(184.0)),
        (2, 2 / 3, 0.5, 1, 540.0, pytest.approx(588.0)),
    ]


def test_order_and_duplicates_do_not_matter() -> None:
    expected = funnel(PARTS, request())
    assert funnel(list(reversed(PARTS)) + PARTS[:10], request()) == expected


def test_empty_window_is_an_empty_result() -> None:
    result = funnel(
        PARTS,
        FunnelRequest.model_validate({"from": T0 + 5000, "to": T0 + 6000, "entity_key": "part_id", "steps": STEPS}),
    )
    assert figures(result) == [(0, None, None, 0, None, None)] * 4
    assert funnel([], request()).entities == 0


def test_filters_compare_json_types() -> None:
    events = [
        ev("part_inspected", 1, part_id="a", result="ok", score=1),
        ev("part_inspected", 2, part_id="b", result="ok", score="1"),
        ev("part_inspected", 3, part_id="c", result="ok", score=True),
        ev("part_inspected", 4, part_id="d", result="ok", score=1.0),
        ev("part_inspected", 5, part_id="e", result="rework", score=2),
    ]

    def count(where: dict[str, Any]) -> int:
        return funnel(events, request([{"kind": "part_inspected", "where": where}])).entities

    assert count({"score": 1}) == 2  # 1 and 1.0, not "1" nor true
    assert count({"score": "1"}) == 1
    assert count({"score": True}) == 1
    assert count({"score": [1, "1"]}) == 3
    assert count({"result": ["ok", "rework"], "score": [2, True]}) == 2
    assert count({"missing": "x"}) == 0


def test_device_and_gateway_keys() -> None:
    events = [
        ev("device_connected", 1, device="cnc-1", gateway="gw1", previous="starting"),
        ev("device_connected", 1, device="cnc-1", gateway="gw2", previous="starting"),
        ev("device_disconnected", 5, device="cnc-1", gateway="gw2", error="x"),
    ]
    steps = [{"kind": "device_connected"}, {"kind": "device_disconnected"}]
    assert [s.entities for s in funnel(events, request(steps, "device")).steps] == [2, 1]
    assert [s.entities for s in funnel(events, request(steps, "gateway")).steps] == [2, 1]
    assert [s.entities for s in funnel(events, request(steps, "device", gateway="gw1")).steps] == [1, 0]


def test_requests_are_checked() -> None:
    bad = [
        {"from": T0, "to": T0, "entity_key": "part_id", "steps": STEPS},
        {"from": T0, "to": T0 + 1, "entity_key": "part id", "steps": STEPS},
        {"from": T0, "to": T0 + 1, "entity_key": "part_id", "steps": []},
        {"from": T0, "to": T0 + 1, "entity_key": "part_id", "steps": [{"kind": "x", "where": {"a": None}}]},
        {"from": T0, "to": T0 + 1, "entity_key": "part_id", "steps": [{"kind": "x", "where": {"a'--": 1}}]},
        {"from": "yesterday", "to": T0 + 1, "entity_key": "part_id", "steps": STEPS},
    ]
    for body in bad:
        with pytest.raises(ValueError):
            FunnelRequest.model_validate(body)
    ok = FunnelRequest.model_validate(
        {"from": "2025-11-19T00:00:00Z", "to": "2025-11-19T01:00:00", "entity_key": "part_id", "steps": STEPS}
    )
    assert (ok.start, ok.end) == (T0, T0 + 3600)


# -- the SQL twin ------------------------------------------------------------------------------


def same_in_sql(db: Db, events: list[StoredEvent], req: FunnelRequest) -> None:
    assert sql_funnel(db.conn, db.dialect, req) == funnel(events, req)


def test_sql_parts_funnel(db: Db) -> None:
    db.load(PARTS)
    for req in (request(), request(max_step_gap_s=100), request(STEPS[1:]), request(gateway="gw2")):
        same_in_sql(db, PARTS, req)
    result = sql_funnel(db.conn, db.dialect, request())
    assert figures(result)[3] == (3, 1.0, 3 / 7, 0, 100.0, pytest.approx(415.2))


def test_sql_alarm_funnel_and_empty_window(db: Db) -> None:
    db.load(ALARMS)
    steps: list[dict[str, Any]] = [
        {"kind": "alarm_raised"},
        {"kind": "alarm_acknowledged", "max_gap_s": 300},
        {"kind": "alarm_cleared"},
    ]
    same_in_sql(db, ALARMS, request(steps, "occurrence_id"))
    same_in_sql(db, ALARMS, request(steps, "alarm_id"))  # per alarm: its first raise in the window
    empty = FunnelRequest.model_validate({"from": 1.0, "to": 2.0, "entity_key": "alarm_id", "steps": steps})
    same_in_sql(db, ALARMS, empty)
    assert sql_funnel(db.conn, db.dialect, empty).entities == 0


def test_sql_typed_filters_and_keys(db: Db) -> None:
    events = [
        ev("part_inspected", i, part_id=pid, result=res, score=score)
        for i, (pid, res, score) in enumerate(
            [("a", "ok", 1), ("b", "ok", "1"), ("c", "ok", True), ("d", "ok", 1.0), (7, "rework", 2), (1.5, "ok", 1)]
        )
    ] + [ev("device_connected", 9, device="d'1", gateway="gw2", previous="x")]
    db.load(events)
    for where in (
        {"score": 1},
        {"score": "1"},
        {"score": True},
        {"score": False},
        {"score": [1, "1", True]},
        {"result": ["ok", "rework"], "score": [2, True]},
        {"result": "o'k; DROP TABLE events"},
    ):
        same_in_sql(db, events, request([{"kind": "part_inspected", "where": where}]))
    same_in_sql(db, events, request([{"kind": "device_connected"}], "device"))
    same_in_sql(db, events, request([{"kind": "x' OR '1'='1"}], "gateway"))


def test_sql_equals_pure_on_random_events(db: Db) -> None:
    import random

    rng = random.Random(11)
    kinds = ["part_loaded", "part_machined", "part_inspected", "part_packed"]
    events = []
    for n in range(1500):
        part: Any = rng.choice([f"p{rng.randrange(200)}", rng.randrange(50)])
        kind = rng.choice(kinds)
        extra = {"result": rng.choice(["ok", "nok"])} if kind == "part_inspected" else {}
        events.append(
            ev(
                kind,
                rng.uniform(-100, 2000),
                gateway=rng.choice(["gw1", "gw2"]),
                part_id=part,
                event_id=f"e{n % 1400}",
                **extra,
            )
        )
    db.load(events)
    for gap in (None, 50.0, 400.0):
        same_in_sql(db, events, request(max_step_gap_s=gap))
        same_in_sql(db, events, request(STEPS[::-1], max_step_gap_s=gap))
