"""Request planner: turn a profile's tags into as few Modbus read requests as possible.

Tags are grouped by table and sorted by address; neighbouring tags are merged into
one request while the unread gap between them is at most ``max_gap`` addresses and
the request spans at most ``max_registers`` registers (``max_bits`` for coils and
discrete inputs). A tag wider than the limit on its own (a long string with a small
``max_registers``) gets a request of its own, sized to the tag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edge_agent.profiles import ModbusTag

TABLES = ("holding", "input", "coil", "discrete")
BIT_TABLES = ("coil", "discrete")
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class Read:
    """One read request: ``count`` addresses of ``table`` from ``start``, carrying ``tags``."""

    table: str
    start: int
    count: int
    tags: tuple[ModbusTag, ...]

    @property
    def end(self) -> int:
        """Last address read (inclusive)."""
        return self.start + self.count - 1


def plan_reads(
    tags: Iterable[ModbusTag], max_gap: int = 8, max_registers: int = 125, max_bits: int = MAX_BITS
) -> list[Read]:
    """Coalesce tags into read requests, ordered by table then start address."""
    by_table: dict[str, list[ModbusTag]] = {}
    for tag in tags:
        by_table.setdefault(tag.table, []).append(tag)
    reads: list[Read] = []
    for table in TABLES:
        members = sorted(by_table.get(table, []), key=lambda t: (t.address, t.register_count))
        limit = max_bits if table in BIT_TABLES else max_registers
        reads.extend(_coalesce(table, members, max_gap, limit))
    return reads


def _coalesce(table: str, tags: list[ModbusTag], max_gap: int, limit: int) -> list[Read]:
    reads: list[Read] = []
    group: list[ModbusTag] = []
    start = end = 0
    for tag in tags:
        tag_end = tag.address + tag.register_count - 1
        if group:
            gap = tag.address - end - 1
            new_end = max(end, tag_end)
            if gap <= max_gap and new_end - start + 1 <= limit:
                group.append(tag)
                end = new_end
                continue
            reads.append(Read(table, start, end - start + 1, tuple(group)))
        group, start, end = [tag], tag.address, tag_end
    if group:
        reads.append(Read(table, start, end - start + 1, tuple(group)))
    return reads
