"""The simulated MES and operators: seeded, repeatable, and every event they make fits the catalogue."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from datetime import UTC, datetime

import pytest

from cloud_sync.analytics.api_models import FunnelRequest
from cloud_sync.analytics.funnel import funnel
from cloud_sync.analytics.records import StoredEvent
from edge_agent.behaviour.envelope import EventEnvelope
from edge_agent.behaviour.kinds import validate_attributes
from simulators.mes import CounterFollower, MesOptions, Outbox, PartFlow, plant_history
from simulators.operators import OperatorModel, shift_of

T0 = datetime(2026, 11, 19, 0, 0, tzinfo=UTC).timestamp()


def history(seed: int = 7, hours: float = 2.0) -> list[dict]:
    flow = PartFlow(seed)
    events = []
    for device, completed, cycle, scrap in plant_history(42, 2, T0, T0 + hours * 3600):
        events += flow.part(device, completed, cycle, scrap)
    return events


def test_plant_history_follows_the_plant_model() -> None:
    parts = plant_history(42, 2, T0, T0 + 3600)
    assert parts == plant_history(42, 2, T0, T0 + 3600)
    assert {p[0] for p in parts} == {"cnc-1", "cnc-2"}
    assert all(T0 <= p[1] < T0 + 3600 for p in parts)
    assert [p[1] for p in parts] == sorted(p[1] for p in parts)
    per_machine = Counter(p[0] for p in parts)
    assert all(100 < n < 300 for n in per_machine.values()), per_machine  # 12-16 s cycles, with stops
    assert all(12.0 <= p[2] <= 18.0 for p in parts)
    assert 0 < sum(p[3] for p in parts) < 0.1 * len(parts)


def test_part_flow_is_seeded_and_every_event_is_valid() -> None:
    events = history()
    assert events == history()
    assert events != history(seed=8)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))
    for e in events:
        EventEnvelope.model_validate(e)
        validate_attributes(e["kind"], e["attributes"])
    kinds = Counter(e["kind"] for e in events)
    loaded = kinds["part_loaded"]
    assert loaded > 500
    assert kinds["part_machined"] < loaded and kinds["part_packed"] < kinds["part_machined"]
    results = Counter(e["attributes"]["result"] for e in events if e["kind"] == "part_inspected")
    assert results["ok"] > 0.9 * sum(results.values()) and results["nok"] > 0 and results["rework"] >= 0
    orders = {e["attributes"]["order_id"] for e in events}
    assert 2 < len(orders) < 40


def test_part_flow_through_the_funnel_has_every_kind_of_loss() -> None:
    events = history()
    stored = [StoredEvent(gateway_id="mes", seq=-(i + 1), event_id=e["id"], ts=e["ts"], device=e["device"],
                          kind=e["kind"], attributes=e["attributes"]) for i, e in enumerate(events)]
    request = FunnelRequest.model_validate({
        "from": T0 - 60, "to": T0 + 3 * 3600, "entity_key": "part_id",
        "steps": [{"kind": "part_loaded"}, {"kind": "part_machined"},
                  {"kind": "part_inspected", "where": {"result": "ok"}}, {"kind": "part_packed"}],
    })
    steps = funnel(stored, request).steps
    counts = [s.entities for s in steps]
    assert counts[0] > counts[1] > counts[2] > counts[3] > 0.85 * counts[0]
    assert steps[2].median_s is not None and 20 <= steps[2].median_s <= 240  # inspection queue
    assert steps[3].median_s is not None and 60 <= steps[3].median_s <= 900  # packing


def test_outbox_posts_late_and_twice_but_never_loses_below_its_bound() -> None:
    flow = PartFlow(1, options=MesOptions(late_p=0.2, duplicate_p=0.1))
    events = [e for i in range(200) for e in flow.part("cnc-1", T0 + 15 * i, 14.0, i % 30 == 0)]
    box = Outbox(2, MesOptions(late_p=0.2, duplicate_p=0.1))
    box.add(events)
    released = box.due(T0 + 10_000, limit=100_000)
    assert box.due(T0 + 10_000) == [] and len(box) == 0
    ids = [e["id"] for e in released]
    assert set(ids) == {e["id"] for e in events}
    assert len(ids) - len(set(ids)) > 0  # some twice
    times = [e["ts"] for e in released]
    assert any(later < earlier for earlier, later in itertools.pairwise(times))  # some out of order
    small = Outbox(3, MesOptions(late_p=0.0, duplicate_p=0.0), max_events=10)
    small.add(events[:25])
    assert len(small) == 10 and small.dropped == 15
    newest = sorted(events[:25], key=lambda e: e["ts"])[15:]
    assert [e["id"] for e in small.due(T0 + 10_000)] == [e["id"] for e in newest]


def test_counter_follower_turns_increases_into_parts() -> None:
    follow = CounterFollower()
    assert follow.update("cnc-1", 100, 3, T0) == []  # the first reading is the baseline
    parts = follow.update("cnc-1", 103, 4, T0 + 60)
    assert len(parts) == 4 and sum(s for _, _, s in parts) == 1
    assert [t for t, _, _ in parts] == [T0 + 15, T0 + 30, T0 + 45, T0 + 60]
    assert follow.update("cnc-1", 103, 4, T0 + 62) == []
    assert follow.update("cnc-1", 2, 0, T0 + 70) == []  # a new shift: counts start again
    assert len(follow.update("cnc-1", 4, 0, T0 + 100)) == 2


@pytest.mark.parametrize(("hour", "shift"), [(6, "early"), (13, "early"), (14, "late"), (21, "late"), (22, "night"),
                                             (0, "night"), (5, "night")])
def test_shifts(hour: int, shift: str) -> None:
    assert shift_of(T0 + hour * 3600, UTC) == shift


def test_operators_are_quicker_on_the_early_shift_and_shelve_only_minor_alarms() -> None:
    def delays(hour: int, priority: str = "high", seed: int = 5) -> list[float]:
        model = OperatorModel(seed, tz=UTC)
        return [model.decide({"id": "a", "priority": priority}, T0 + hour * 3600).after_s for _ in range(300)]

    assert delays(8) == delays(8)
    early, late, night = (statistics.median(delays(h)) for h in (8, 16, 2))
    assert early < late < night
    assert statistics.median(delays(8, "urgent")) < early < statistics.median(delays(8, "low"))
    model = OperatorModel(9, tz=UTC)
    high = Counter(model.decide({"id": "a", "priority": "high"}, T0).action for _ in range(300))
    low = Counter(model.decide({"id": "a", "priority": "low"}, T0).action for _ in range(300))
    assert high["shelve"] == 0 and 10 < low["shelve"] < 80
    shelve = next(d for d in (model.decide({"priority": "low"}, T0) for _ in range(300)) if d.action == "shelve")
    assert shelve.shelve_s is not None and 600 <= shelve.shelve_s <= 1800
    fast = OperatorModel(5, tz=UTC, time_scale=0.01)
    assert statistics.median(fast.decide({"priority": "high"}, T0 + 8 * 3600).after_s for _ in range(300)) < 1.0
    with pytest.raises(ValueError):
        OperatorModel(1, time_scale=0)
