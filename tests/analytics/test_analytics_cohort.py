"""Cohort matrix: the pure function on hand-built event sets (figures written out), then the SQL twin."""

from __future__ import annotations

import random
from typing import Any

import pytest
from analytics_testkit import T0, Db, ev

from cloud_sync.analytics import CohortRequest, cohort, sql_cohort
from cloud_sync.analytics.records import period_index, period_label, period_start

D = 86_400.0
BREAKDOWN = {"category": "unplanned_stop", "reason": "bearing"}


def commissioned(day: float, device: str, gateway: str = "gw1") -> Any:
    return ev("device_connected", day * D, device=device, gateway=gateway, previous="starting")


def breakdown(day: float, device: str, gateway: str = "gw1", category: str = "unplanned_stop", **kw: Any) -> Any:
    return ev(
        "stop_ended",
        day * D,
        device=device,
        gateway=gateway,
        started_at=T0,
        duration_s=600.0,
        category=category,
        reason="bearing",
        **kw,
    )


# T0 is Wednesday 2025-11-19: its week starts Monday 2025-11-17 (T0 - 2 days).
FLEET = [
    commissioned(0, "a"),
    breakdown(1, "a"),  # week 0, offset 0
    breakdown(8, "a", event_id="dup"),  # offset 1 ...
    breakdown(8, "a", event_id="dup"),  # ... stored twice
    breakdown(9, "a"),  # offset 1 again
    breakdown(1, "b"),  # before b was commissioned: not counted
    commissioned(2, "b"),
    commissioned(2.5, "b"),  # commissioned again: the first counts
    breakdown(15, "b"),  # 2025-12-04: offset 2
    commissioned(7, "a", "gw2"),  # week 1 (2025-11-24)
    breakdown(7 + 1 / 24, "a", "gw2"),  # offset 0
    breakdown(14, "a", "gw2"),  # offset 1
    commissioned(-30, "c"),  # first commissioned before the window: in no cohort
    commissioned(3, "c"),
    breakdown(4, "c"),
    commissioned(8, "d"),
    breakdown(9, "d", category="planned_stop"),  # not a breakdown
    breakdown(18, "a"),  # after the window
]


def request(**extra: Any) -> CohortRequest:
    body: dict[str, Any] = {
        "from": T0 - 2 * D,
        "to": T0 + 17 * D,  # Saturday 2025-12-06: the week of 2025-12-08 has not started
        "entity_key": "device",
        "first": {"kind": "device_connected"},
        "return": {"kind": "stop_ended", "where": {"category": "unplanned_stop"}},
        "period": "week",
        "periods": 5,
        **extra,
    }
    return CohortRequest.model_validate(body)


def matrix(result: Any) -> list[tuple[str, int, list[Any]]]:
    return [(c.period, c.size, c.values) for c in result.cohorts]


def test_devices_by_commissioning_week_with_a_breakdown() -> None:
    result = cohort(FLEET, request())
    assert result.offsets == [0, 1, 2, 3, 4]
    assert matrix(result) == [
        ("2025-11-17", 2, [0.5, 0.5, 0.5, None, None]),
        ("2025-11-24", 2, [0.5, 0.5, None, None, None]),
    ]
    assert [c.start for c in result.cohorts] == [T0 - 2 * D, T0 + 5 * D]


def test_metrics() -> None:
    assert matrix(cohort(FLEET, request(metric="entities")))[0][2] == [1, 1, 1, None, None]
    assert matrix(cohort(FLEET, request(metric="events")))[0][2] == [1, 2, 1, None, None]  # the duplicate once
    assert matrix(cohort(FLEET, request(metric="events_per_entity")))[0][2] == [0.5, 1.0, 0.5, None, None]


def test_days_months_and_gateways() -> None:
    days = cohort(FLEET, request(period="day", periods=3))
    assert [(c.period, c.size) for c in days.cohorts] == [
        ("2025-11-19", 1),
        ("2025-11-21", 1),
        ("2025-11-26", 1),
        ("2025-11-27", 1),
    ]
    assert days.cohorts[0].values == [0.0, 1.0, 0.0]
    months = cohort(FLEET, request(period="month", periods=2))
    assert matrix(months) == [("2025-11", 4, [0.5, 0.5])]  # December: b and gw2/a
    assert matrix(cohort(FLEET, request(gateway="gw2"))) == [("2025-11-24", 1, [1.0, 1.0, None, None, None])]


def test_out_of_order_duplicates_and_empty_windows() -> None:
    expected = cohort(FLEET, request())
    assert cohort(list(reversed(FLEET)) + FLEET[:4], request()) == expected
    empty = cohort(FLEET, request(**{"from": T0 + 100 * D, "to": T0 + 101 * D}))
    assert empty.cohorts == [] and empty.offsets == [0, 1, 2, 3, 4]
    assert cohort([], request()).cohorts == []


def test_periods_are_numbered_from_the_epoch() -> None:
    assert period_index(T0, "day") == 20411
    assert period_label(period_index(T0, "week"), "week") == "2025-11-17"
    assert period_label(period_index(T0, "month"), "month") == "2025-11"
    assert period_start(period_index(T0 + 12 * D, "month"), "month") == T0 + 12 * D  # 2025-12-01
    assert period_index(T0 - 0.001, "day") == 20410


# -- the SQL twin ------------------------------------------------------------------------------


def test_sql_cohort(db: Db) -> None:
    db.load(FLEET)
    for req in (
        request(),
        request(metric="events"),
        request(metric="events_per_entity", period="day", periods=10),
        request(period="month", metric="entities"),
        request(gateway="gw2"),
        request(**{"from": T0 + 100 * D, "to": T0 + 101 * D}),
    ):
        assert sql_cohort(db.conn, db.dialect, req) == cohort(FLEET, req)
    assert matrix(sql_cohort(db.conn, db.dialect, request()))[0] == ("2025-11-17", 2, [0.5, 0.5, 0.5, None, None])


def test_sql_equals_pure_on_random_events(db: Db) -> None:
    rng = random.Random(5)
    events = []
    for n in range(1200):
        device = f"m{rng.randrange(40)}"
        gateway = rng.choice(["gw1", "gw2"])
        day = rng.uniform(-10, 80)
        if rng.random() < 0.2:
            events.append(commissioned(day, device, gateway))
        else:
            events.append(
                breakdown(
                    day,
                    device,
                    gateway,
                    rng.choice(["unplanned_stop", "changeover"]),
                    event_id=f"b{n % 1100}",
                    order_id=rng.randrange(30),
                )
            )
    db.load(events)
    for period in ("day", "week", "month"):
        for metric in ("share", "events"):
            req = request(period=period, metric=metric, periods=12, **{"to": T0 + 70 * D})
            assert sql_cohort(db.conn, db.dialect, req) == cohort(events, req)
    by_order = request(entity_key="order_id", first={"kind": "stop_ended"}, periods=4, **{"from": T0 - 11 * D})
    assert sql_cohort(db.conn, db.dialect, by_order) == cohort(events, by_order)
    assert cohort(events, by_order).cohorts  # integer keys do form cohorts


@pytest.mark.parametrize("bad", [{"period": "year"}, {"periods": 0}, {"metric": "avg"}, {"return": None}])
def test_requests_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        request(**bad)
