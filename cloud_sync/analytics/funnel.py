"""Funnel: how many entities go through ordered steps, and how long each step takes.

For each entity (``entity_key``) and only events in ``[from, to)``:

* it reaches step 1 at its **earliest** step-1 event;
* it reaches step *k* at its earliest step-*k* event at or after the instant it
  reached step *k-1* and, with a gap limit, at most that long after it;
* an entity that skips a step stops at the last step it reached in order.

Arrival order does not matter (events are taken by time) and duplicates (the
same event stored twice) change nothing, since only earliest instants count.
Per step: the entities, conversion from the previous and the first step,
drop-off, and the median and 90th percentile (linear interpolation) of the time
from the previous step. A window without events gives zero counts, not an error.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence

from cloud_sync.analytics.api_models import FunnelRequest, FunnelResponse, FunnelStep
from cloud_sync.analytics.records import StoredEvent, entity_of, in_window, matches
from edge_agent.behaviour.stats import percentile, ratio

__all__ = ["funnel", "funnel_response"]


def funnel(events: Iterable[StoredEvent], request: FunnelRequest) -> FunnelResponse:
    """The funnel of ``request`` over ``events`` (see the module docstring)."""
    window = in_window(events, request.start, request.end, request.gateway)
    times: list[dict[str, list[float]]] = [defaultdict(list) for _ in request.steps]
    for event in window:
        entity = entity_of(event, request.entity_key)
        if entity is None:
            continue
        for i, step in enumerate(request.steps):
            if matches(event, step):
                times[i][entity].append(event.ts)
    for per_step in times:
        for values in per_step.values():
            values.sort()
    reached = {entity: values[0] for entity, values in times[0].items()}
    counts = [len(reached)]
    stats: list[tuple[float | None, float | None]] = [(None, None)]
    for i in range(1, len(request.steps)):
        limit = request.gap(i)
        following: dict[str, float] = {}
        durations = []
        for entity, before in reached.items():
            candidates = times[i].get(entity)
            if not candidates:
                continue
            at = candidates[bisect.bisect_left(candidates, before)] if candidates[-1] >= before else None
            if at is None or (limit is not None and at > before + limit):
                continue
            following[entity] = at
            durations.append(at - before)
        reached = following
        counts.append(len(reached))
        durations.sort()
        stats.append((percentile(durations, 0.5), percentile(durations, 0.9)))
    return funnel_response(request, counts, stats)


def funnel_response(
    request: FunnelRequest, counts: Sequence[int], stats: Sequence[tuple[float | None, float | None]]
) -> FunnelResponse:
    """The response from the entities per step and the median and p90 time from the previous step."""
    steps = []
    for i, spec in enumerate(request.steps):
        previous = counts[i - 1] if i else counts[0]
        steps.append(
            FunnelStep(
                step=i + 1,
                kind=spec.kind,
                label=spec.label,
                entities=counts[i],
                conversion_from_previous=ratio(counts[i], previous),
                conversion_from_first=ratio(counts[i], counts[0]),
                drop_off=previous - counts[i],
                drop_off_rate=ratio(previous - counts[i], previous),
                median_s=stats[i][0],
                p90_s=stats[i][1],
            )
        )
    return FunnelResponse(
        entity_key=request.entity_key, start=request.start, end=request.end, entities=counts[0], steps=steps
    )
