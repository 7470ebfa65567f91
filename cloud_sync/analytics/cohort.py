"""Cohort matrix: entities grouped by the period of their first event, and what they do after it.

* An entity's **first event** is its earliest event of the ``first`` step, ever
  (before ``to``); entities whose first event falls in ``[from, to)`` form the
  cohorts, one per period (UTC day, ISO week or month) of that event.
* **Return events** (the ``return`` step: a breakdown, a re-order, a repair) at or
  after the entity's first event and before ``to`` are counted in offset
  ``period(return) - period(first)``; offset 0 is the cohort's own period.
* Cell metric: ``entities`` with at least one return in that offset, ``share`` of
  the cohort's size, ``events`` (distinct event ids: duplicates count once), or
  ``events_per_entity``. A cell whose period starts at or after ``to`` is ``null``
  (not observed yet), not zero.

Events may arrive in any order; a window without first events gives no cohorts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from cloud_sync.analytics.api_models import Cohort, CohortRequest, CohortResponse
from cloud_sync.analytics.records import StoredEvent, entity_of, in_window, matches, period_index, period_label
from cloud_sync.analytics.records import period_start as start_of

__all__ = ["Cells", "cohort", "cohort_response"]

Cells = Mapping[tuple[int, int], tuple[int, int]]
"""``(cohort period, offset) -> (entities, events)``."""


def cohort(events: Iterable[StoredEvent], request: CohortRequest) -> CohortResponse:
    """The cohort matrix of ``request`` over ``events`` (see the module docstring)."""
    before_end = in_window(events, None, request.end, request.gateway)
    first: dict[str, float] = {}
    for e in before_end:
        if matches(e, request.first):
            entity = entity_of(e, request.entity_key)
            if entity is not None and (entity not in first or e.ts < first[entity]):
                first[entity] = e.ts
    members = {entity: ts for entity, ts in first.items() if ts >= request.start}
    sizes: dict[int, int] = defaultdict(int)
    for ts in members.values():
        sizes[period_index(ts, request.period)] += 1
    entities: dict[tuple[int, int], set[str]] = defaultdict(set)
    ids: dict[tuple[int, int], set[str]] = defaultdict(set)
    for e in before_end:
        if not matches(e, request.returning):
            continue
        entity = entity_of(e, request.entity_key)
        t0 = members.get(entity) if entity is not None else None
        if entity is None or t0 is None or e.ts < t0:
            continue
        p0 = period_index(t0, request.period)
        offset = period_index(e.ts, request.period) - p0
        if offset < request.periods:
            entities[p0, offset].add(entity)
            ids[p0, offset].add(e.event_id)
    cells = {key: (len(entities[key]), len(ids[key])) for key in entities}
    return cohort_response(request, sizes, cells)


def cohort_response(request: CohortRequest, sizes: Mapping[int, int], cells: Cells) -> CohortResponse:
    """The response from the cohort sizes (by period index) and the cells."""
    cohorts = []
    for p0 in sorted(sizes):
        size = sizes[p0]
        values: list[float | None] = []
        for offset in range(request.periods):
            if start_of(p0 + offset, request.period) >= request.end:
                values.append(None)
                continue
            ents, evs = cells.get((p0, offset), (0, 0))
            values.append(
                {"entities": ents, "share": ents / size, "events": evs, "events_per_entity": evs / size}[request.metric]
            )
        cohorts.append(
            Cohort(
                period=period_label(p0, request.period), start=start_of(p0, request.period), size=size, values=values
            )
        )
    return CohortResponse(
        entity_key=request.entity_key,
        start=request.start,
        end=request.end,
        period=request.period,
        metric=request.metric,
        offsets=list(range(request.periods)),
        cohorts=cohorts,
    )
