"""Segments: devices clustered by behaviour, with a name and an explanation for each segment.

Features per device, from its ``machine_profile`` events in the window
(:mod:`cloud_sync.analytics.profiles`): MTBF, MTTR, micro-stops per hour,
availability, performance, quality. Before clustering, MTBF and MTTR are taken
as ``log10(1 + hours)`` and ``log10(1 + minutes)`` (they span orders of
magnitude; a few very long repairs would otherwise decide every segment), a
device without failures gets its run time as MTBF (a lower bound) and an MTTR of
0, a missing ratio the fleet median; then every feature is standardised (mean 0,
standard deviation 1, but never dividing by less than :data:`MIN_SCALE`, so that a feature
the fleet hardly varies on does not split it). Devices within about 0.05 of each other
on every standardised feature count as one when capping ``k``. k-means (:mod:`cloud_sync.analytics.kmeans`) with a fixed
seed makes the result repeatable.

A segment is named after the archetype its centre fits best (in standard
deviations from the fleet mean): *long breakdowns* (high MTTR), *frequent short
stops* (many micro-stops), *frequent breakdowns* (low MTBF), *slow running* (low
performance), *quality losses* (low quality), *stable high performers* (good on
all). Each archetype names one segment at most; segments that fit none closely
(score below 0.3) are *typical*. The explanation compares the members' mean
features with the fleet's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from cloud_sync.analytics.api_models import DeviceFeatures, DeviceSegment, Segment, SegmentsQuery, SegmentsResponse
from cloud_sync.analytics.kmeans import kmeans, standardise
from cloud_sync.analytics.profiles import ProfileTotals

__all__ = ["ARCHETYPES", "FEATURES", "MIN_SCALE", "Archetype", "device_features", "segments"]

FEATURES = ("mtbf_s", "mttr_s", "micro_stops_per_h", "availability", "performance", "quality")
MIN_SCALE = (0.05, 0.05, 0.5, 0.02, 0.02, 0.01)
"""Smallest divisors when standardising: log10 MTBF and MTTR (about 12 %), micro-stops per hour, A, P, Q.
Differences well below these are noise, not behaviour."""
MIN_SCORE = 0.3
MTBF, MTTR, MICRO, A, P, Q = range(6)

Score = Callable[[Sequence[float]], float]


@dataclass(frozen=True)
class Archetype:
    """A named behaviour: how well a segment centre (in standard deviations) fits it, and what it is about."""

    name: str
    summary: str
    score: Score
    features: tuple[int, ...] = ()


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("long breakdowns", "repairs take long", lambda z: z[MTTR], (MTTR,)),
    Archetype("frequent short stops", "many micro-stops", lambda z: z[MICRO], (MICRO,)),
    Archetype("frequent breakdowns", "fail often", lambda z: -z[MTBF], (MTBF,)),
    Archetype("slow running", "run below their ideal speed", lambda z: -z[P], (P,)),
    Archetype("quality losses", "make more scrap", lambda z: -z[Q], (Q,)),
    Archetype(
        "stable high performers",
        "run long between failures, repair fast and make good parts",
        lambda z: (z[MTBF] - z[MTTR] - z[MICRO] + z[A] + z[P] + z[Q]) / 6,
    ),
)


def device_features(totals: dict[tuple[str, str], ProfileTotals]) -> list[DeviceFeatures]:
    """The features of each device from its profile totals, in ``(gateway, device)`` order."""
    return [
        DeviceFeatures(
            gateway_id=gateway,
            device=device,
            run_s=t.run_s,
            failures=t.failures,
            micro_stops=t.micro_stops,
            mtbf_s=t.mtbf_s,
            mttr_s=t.mttr_s,
            micro_stops_per_h=t.micro_stops_per_h,
            availability=t.availability,
            performance=t.performance,
            quality=t.quality,
        )
        for (gateway, device), t in sorted(totals.items())
    ]


def _matrix(devices: Sequence[DeviceFeatures]) -> np.ndarray:
    rows = []
    for d in devices:
        mtbf = d.mtbf_s if d.mtbf_s is not None else d.run_s
        rows.append(
            [
                math.log10(1 + mtbf / 3600),
                math.log10(1 + (d.mttr_s or 0.0) / 60),
                d.micro_stops_per_h or 0.0,
                math.nan if d.availability is None else d.availability,
                math.nan if d.performance is None else d.performance,
                math.nan if d.quality is None else d.quality,
            ]
        )
    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
    for col in range(x.shape[1]):
        missing = np.isnan(x[:, col])
        if missing.any():
            present = x[~missing, col]
            x[missing, col] = float(np.median(present)) if len(present) else 0.0
    return x


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _show(feature: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if feature == "mtbf_s":
        return f"{value / 3600:.1f} h"
    if feature == "mttr_s":
        return f"{value / 60:.1f} min"
    if feature == "micro_stops_per_h":
        return f"{value:.2f}/h"
    return f"{value:.0%}"


_LABELS = {
    "mtbf_s": "MTBF",
    "mttr_s": "MTTR",
    "micro_stops_per_h": "micro-stops",
    "availability": "availability",
    "performance": "performance",
    "quality": "quality",
}


_TYPICAL = Archetype("typical", "close to the fleet on the whole", lambda z: 0.0)


def _names(centres: np.ndarray) -> list[Archetype]:
    scores = np.array([[a.score(list(c)) for a in ARCHETYPES] for c in centres]).reshape(len(centres), len(ARCHETYPES))
    names: list[Archetype | None] = [None] * len(centres)
    free_rows, free_cols = set(range(len(centres))), set(range(len(ARCHETYPES)))
    while free_rows and free_cols:
        best = max((scores[r, c], -r, -c) for r in free_rows for c in free_cols)
        value, r, c = best[0], -best[1], -best[2]
        if value < MIN_SCORE:
            break
        names[r] = ARCHETYPES[c]
        free_rows.discard(r)
        free_cols.discard(c)
    typical = 0
    out = []
    for name in names:
        if name is None:
            typical += 1
            name = replace(_TYPICAL, name="typical" if typical == 1 else f"typical ({typical})")
        out.append(name)
    return out


def _explain(
    archetype: Archetype, centre: np.ndarray, members: dict[str, float | None], fleet: dict[str, float | None]
) -> str:
    """The archetype's summary, then up to three features (its own first) at least half a deviation off."""
    order = sorted(range(len(FEATURES)), key=lambda i: (i not in archetype.features, -abs(float(centre[i])), i))
    parts = [
        f"{_LABELS[f]} {_show(f, members[f])} vs fleet {_show(f, fleet[f])}"
        for f in (FEATURES[i] for i in order if abs(float(centre[i])) >= 0.5)
    ][:3]
    text = "; ".join(parts) if parts else "within half a standard deviation of the fleet mean"
    return f"{archetype.summary}: {text}"


def segments(devices: Sequence[DeviceFeatures], query: SegmentsQuery) -> SegmentsResponse:
    """Cluster ``devices`` into at most ``query.k`` named segments (see the module docstring)."""
    ordered = sorted(devices, key=lambda d: (d.gateway_id, d.device))
    if not ordered:
        return SegmentsResponse(
            start=query.start, end=query.end, k=0, seed=query.seed, features=list(FEATURES), segments=[], devices=[]
        )
    z = standardise(_matrix(ordered), MIN_SCALE)
    result = kmeans(z, query.k, query.seed, resolution=1)
    names = _names(result.centres)
    fleet = {f: _mean([getattr(d, f) for d in ordered]) for f in FEATURES}
    clusters = []
    for label, archetype in enumerate(names):
        members = [d for d, lab in zip(ordered, result.labels.tolist(), strict=True) if lab == label]
        means = {f: _mean([getattr(d, f) for d in members]) for f in FEATURES}
        explanation = _explain(archetype, result.centres[label], means, fleet)
        clusters.append((label, archetype.name, explanation, members, means))
    clusters.sort(key=lambda c: (-len(c[3]), c[1]))
    ids = {label: i for i, (label, *_rest) in enumerate(clusters)}
    out_segments = [
        Segment(
            id=ids[label],
            name=name,
            explanation=explanation,
            size=len(members),
            centroid=means,
            devices=[f"{d.gateway_id}/{d.device}" for d in members],
        )
        for label, name, explanation, members, means in clusters
    ]
    names_by_id = {s.id: s.name for s in out_segments}
    out_devices = [
        DeviceSegment(**d.model_dump(), segment=ids[lab], segment_name=names_by_id[ids[lab]])
        for d, lab in zip(ordered, result.labels.tolist(), strict=True)
    ]
    return SegmentsResponse(
        start=query.start,
        end=query.end,
        k=len(out_segments),
        seed=query.seed,
        features=list(FEATURES),
        segments=out_segments,
        devices=out_devices,
    )
