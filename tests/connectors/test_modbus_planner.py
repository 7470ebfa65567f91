"""The Modbus request planner: coalescing tags into as few reads as the limits allow."""

from __future__ import annotations

from typing import Any

from connector_testkit import shipped

from edge_agent.connectors.modbus.planner import plan_reads
from edge_agent.profiles import ModbusProfile, ModbusTag


def tag(name: str, address: int, **kw: Any) -> ModbusTag:
    kw.setdefault("type", "uint16")
    return ModbusTag(name=name, address=address, **kw)


def spans(reads: list[Any]) -> list[tuple[str, int, int]]:
    return [(r.table, r.start, r.count) for r in reads]


def test_cnc_vmc_needs_three_requests() -> None:
    profile = shipped("cnc_vmc")
    assert isinstance(profile, ModbusProfile)
    reads = plan_reads(profile.tags)  # the connection defaults: max_gap 8, max_registers 125
    # holding 0..16 (11 tags) and the program string at 20..27 (gap 17..19 = 3 <= 8): one read of 28;
    # input power 0..1 + energy 2..5: one read of 6; the coil: one read of 1.
    assert spans(reads) == [("holding", 0, 28), ("input", 0, 6), ("coil", 0, 1)]
    assert len(reads) == 3
    assert len(profile.tags) == 15
    assert len(reads) * 5 <= len(profile.tags)
    assert sorted(t.name for r in reads for t in r.tags) == sorted(t.name for t in profile.tags)


def test_gap_limit() -> None:
    tags = [tag("a", 0), tag("b", 10)]  # 9 unread registers between them
    assert spans(plan_reads(tags, max_gap=8)) == [("holding", 0, 1), ("holding", 10, 1)]
    assert spans(plan_reads(tags, max_gap=9)) == [("holding", 0, 11)]


def test_zero_gap_merges_only_adjacent_tags() -> None:
    tags = [tag("a", 0, type="float32"), tag("b", 2), tag("c", 4)]
    assert spans(plan_reads(tags, max_gap=0)) == [("holding", 0, 3), ("holding", 4, 1)]


def test_register_limit_splits_long_runs() -> None:
    tags = [tag(f"t{i}", i) for i in range(130)]
    assert spans(plan_reads(tags)) == [("holding", 0, 125), ("holding", 125, 5)]
    assert spans(plan_reads(tags, max_registers=100)) == [("holding", 0, 100), ("holding", 100, 30)]


def test_multi_register_tag_is_never_split() -> None:
    tags = [tag("a", 0), tag("b", 123, type="float32")]  # b would end at 124 -> fits exactly
    assert spans(plan_reads(tags, max_gap=200)) == [("holding", 0, 125)]
    tags = [tag("a", 0), tag("b", 124, type="float32")]  # b would end at 125 -> own request
    assert spans(plan_reads(tags, max_gap=200)) == [("holding", 0, 1), ("holding", 124, 2)]


def test_tag_wider_than_the_limit_gets_its_own_request() -> None:
    tags = [tag("a", 0), tag("name", 1, type="string", length=20), tag("b", 21)]
    assert spans(plan_reads(tags, max_registers=10)) == [("holding", 0, 1), ("holding", 1, 20), ("holding", 21, 1)]


def test_bit_tables_use_the_2000_bit_limit() -> None:
    tags = [tag(f"c{i}", i, type="bool", table="coil") for i in range(2001)]
    assert spans(plan_reads(tags, max_registers=10)) == [("coil", 0, 2000), ("coil", 2000, 1)]


def test_overlapping_and_bit_tags_share_a_read() -> None:
    tags = [
        tag("word", 5),
        tag("flag0", 5, type="bool", bit=0),
        tag("flag3", 5, type="bool", bit=3),
        tag("total", 4, type="uint32"),
    ]
    reads = plan_reads(tags)
    assert spans(reads) == [("holding", 4, 2)]
    assert {t.name for t in reads[0].tags} == {"word", "flag0", "flag3", "total"}


def test_tables_are_planned_separately_and_unordered_input_is_sorted() -> None:
    tags = [
        tag("d", 3, type="bool", table="discrete"),
        tag("i2", 40, table="input"),
        tag("h", 7),
        tag("i1", 38, table="input"),
        tag("c", 0, type="bool", table="coil"),
    ]
    assert spans(plan_reads(tags)) == [
        ("holding", 7, 1),
        ("input", 38, 3),
        ("coil", 0, 1),
        ("discrete", 3, 1),
    ]


def test_empty_profile_plans_nothing() -> None:
    assert plan_reads([]) == []
