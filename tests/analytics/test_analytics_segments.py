"""Segments: k-means in numpy and named segments, on a hand-built fleet; the SQL reader gives the same answer."""

from __future__ import annotations

import numpy as np
import pytest
from analytics_testkit import T0, Db, profile

from cloud_sync.analytics import SegmentsQuery, by_device, device_features, kmeans, segments, sql_segments, standardise


def fleet() -> list:
    events = []
    for hour in (3600, 7200):
        for i, a in enumerate((0.97, 0.96, 0.98)):
            events.append(
                profile(
                    hour,
                    f"s{i}",
                    run_s=3500,
                    micro_stops=1,
                    availability=a,
                    performance=0.95,
                    quality=0.99,
                    good=100,
                    scrap=1,
                )
            )
            events.append(
                profile(
                    hour,
                    f"f{i}",
                    "gw2",
                    run_s=3000,
                    failures=1,
                    mttr_s=200 + i,
                    micro_stops=30,
                    availability=0.85,
                    performance=0.7,
                    quality=0.97,
                    good=80,
                    scrap=2,
                )
            )
            events.append(
                profile(
                    hour,
                    f"b{i}",
                    run_s=1800,
                    failures=1,
                    mttr_s=1800 + 60 * i,
                    micro_stops=1,
                    availability=0.5,
                    performance=0.9,
                    quality=0.98,
                    good=50,
                    scrap=1,
                )
            )
    events.append(profile(3600, "s0", period="day", run_s=1))  # a daily profile: not mixed with the hourly ones
    return events


QUERY = SegmentsQuery.model_validate({"from": T0, "to": T0 + 86_400, "k": 3, "seed": 7})


def test_features_add_up_the_profiles() -> None:
    features = {f"{d.gateway_id}/{d.device}": d for d in device_features(by_device(fleet(), "hour"))}
    b1 = features["gw1/b1"]
    assert (b1.run_s, b1.failures, b1.micro_stops) == (3600.0, 2, 2)
    assert (b1.mtbf_s, b1.mttr_s, b1.micro_stops_per_h) == (1800.0, 1860.0, 2.0)
    assert (b1.availability, b1.performance) == (pytest.approx(0.5), pytest.approx(0.9))
    s0 = features["gw1/s0"]
    assert (s0.mtbf_s, s0.mttr_s, s0.quality) == (None, None, pytest.approx(0.99))


def test_named_segments() -> None:
    result = segments(device_features(by_device(fleet(), "hour")), QUERY)
    assert result.k == 3
    assert [(s.id, s.name, s.size) for s in result.segments] == [
        (0, "frequent short stops", 3),
        (1, "long breakdowns", 3),
        (2, "stable high performers", 3),
    ]
    assert result.segments[1].devices == ["gw1/b0", "gw1/b1", "gw1/b2"]
    assert result.segments[1].explanation.startswith("repairs take long: MTTR 31.0 min vs fleet 17.2 min")
    assert result.segments[0].centroid["micro_stops_per_h"] == pytest.approx(36.0)
    assert {d.device: d.segment_name for d in result.devices}["f2"] == "frequent short stops"
    assert result.features == ["mtbf_s", "mttr_s", "micro_stops_per_h", "availability", "performance", "quality"]


def test_segments_are_deterministic_and_independent_of_input_order() -> None:
    features = device_features(by_device(fleet(), "hour"))
    first = segments(features, QUERY)
    assert segments(list(reversed(features)), QUERY) == first
    assert segments(features, QUERY.model_copy(update={"seed": 123})).segments == first.segments


def test_one_segment_and_no_devices() -> None:
    one = segments(device_features(by_device(fleet(), "hour")), QUERY.model_copy(update={"k": 1}))
    assert [(s.name, s.size) for s in one.segments] == [("typical", 9)]
    assert "within half a standard deviation" in one.segments[0].explanation
    empty = segments([], QUERY)
    assert (empty.k, empty.segments, empty.devices) == (0, [], [])


def test_kmeans() -> None:
    x = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.0, 10.1], [0.0, 0.1]])
    result = kmeans(x, 2, seed=1)
    assert result.labels.tolist() == [0, 0, 1, 1, 0]
    assert result.centres[1].tolist() == pytest.approx([10.0, 10.05])
    same = kmeans(x, 5, seed=1)
    assert len(same.centres) == 5
    duplicates = kmeans(np.array([[1.0, 1.0]] * 4), 3)
    assert duplicates.labels.tolist() == [0, 0, 0, 0] and len(duplicates.centres) == 1
    assert standardise(np.array([[1.0, 5.0], [3.0, 5.0]])).tolist() == [[-1.0, 0.0], [1.0, 0.0]]


def test_sql_segments(db: Db) -> None:
    events = fleet()
    db.load(events)
    expected = segments(device_features(by_device(events, "hour")), QUERY)
    assert sql_segments(db.conn, db.dialect, QUERY) == expected
    gw2 = QUERY.model_copy(update={"gateway": "gw2"})
    assert [(s.name, s.size) for s in sql_segments(db.conn, db.dialect, gw2).segments] == [("typical", 3)]
    day = QUERY.model_copy(update={"period": "day"})
    assert [d.device for d in sql_segments(db.conn, db.dialect, day).devices] == ["s0"]
