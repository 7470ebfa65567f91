"""Waveform tags: one window of a vibration array turned into scalar feature samples (pure: no clock, no I/O).

A profile tag with a ``[tags.waveform]`` table (see docs/device-profiles.md) carries an array: a window of raw
acceleration sampled at a known rate. The connectors never store that array; they hand it to
:func:`window_samples`, which computes the features of :func:`~edge_agent.maintenance.features.waveform_features`
and returns one :class:`~edge_agent.model.Sample` per feature, named ``<tag>.<feature>`` (``vib.rms``,
``vib.kurtosis``, ``vib.bpfo_energy``), with the window's timestamp and quality. From there they are ordinary
samples: buffered, synced, shown on the twin, alarmed on and scored by ``[maintenance] anomaly_tags``.

Feature names (``bands`` and ``peaks`` in the waveform table set how many there are):

* ``rms``, ``peak``, ``peak_to_peak``, ``crest_factor``, ``kurtosis``, ``skewness`` (group ``stats``);
* ``band_<i>_energy``: mean square in band ``i`` (group ``bands``);
* ``peak_<i>_hz``, ``peak_<i>_amplitude``: the ``i``-th largest spectral peak (group ``peaks``);
* ``ftf_energy``, ``bpfo_energy``, ``bpfi_energy``, ``bsf_energy``: energy around each bearing defect
  frequency and its harmonics (group ``bearing``; needs the bearing geometry and a shaft speed).

A window that cannot be used (not a list of numbers, too short, longer than ``max_points``, not finite)
raises :class:`WaveformError`; the connector counts and logs it and goes on.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edge_agent.maintenance.bearing import BearingGeometry
from edge_agent.maintenance.features import waveform_features
from edge_agent.model import Quality, Sample

if TYPE_CHECKING:
    from edge_agent.profiles import BearingSettings, WaveformSettings

__all__ = [
    "FAULTS",
    "GROUPS",
    "MIN_POINTS",
    "STATS",
    "ShaftSpeeds",
    "WaveformError",
    "WindowPlan",
    "as_window",
    "feature_names",
    "resolve_features",
    "window_samples",
]

STATS = ("rms", "peak", "peak_to_peak", "crest_factor", "kurtosis", "skewness")
FAULTS = ("ftf", "bpfo", "bpfi", "bsf")
GROUPS = ("stats", "bands", "peaks", "bearing")
MIN_POINTS = 16
"""Shortest usable window: fewer points give no meaningful spectrum."""


class WaveformError(ValueError):
    """A waveform window that cannot become features."""


def feature_names(bands: int, peaks: int) -> dict[str, tuple[str, ...]]:
    """Every feature a waveform tag can emit, by group."""
    return {
        "stats": STATS,
        "bands": tuple(f"band_{i}_energy" for i in range(bands)),
        "peaks": tuple(name for i in range(peaks) for name in (f"peak_{i}_hz", f"peak_{i}_amplitude")),
        "bearing": tuple(f"{f}_energy" for f in FAULTS),
    }


def resolve_features(requested: Sequence[str] | None, bands: int, peaks: int, bearing: bool) -> tuple[str, ...]:
    """The features to emit, in order: group names expanded, duplicates dropped.

    ``None`` means the default set: ``stats`` and ``bands``, and ``bearing`` when there is a bearing.
    Raises ValueError naming an unknown feature (with a close match) or a bearing feature without a bearing.
    """
    groups = feature_names(bands, peaks)
    if requested is None:
        requested = ["stats", "bands", *(["bearing"] if bearing else [])]
    known = {name for names in groups.values() for name in names}
    out: list[str] = []
    for name in requested:
        if name in groups:
            names: Iterable[str] = groups[name]
        elif name in known:
            names = (name,)
        else:
            close = difflib.get_close_matches(name, [*GROUPS, *sorted(known)], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"features: unknown feature '{name}'{hint}; groups are {', '.join(GROUPS)}, "
                f"with {bands} band(s) and {peaks} peak(s)"
            )
        if not bearing and (name == "bearing" or name in groups["bearing"]):
            raise ValueError(f"features: '{name}' needs the bearing geometry ([tags.waveform.bearing])")
        out += [n for n in names if n not in out]
    if not out:
        raise ValueError("features: name at least one feature")
    return tuple(out)


@dataclass(frozen=True)
class WindowPlan:
    """What to compute for one waveform tag, decided once from its profile settings."""

    tag: str
    features: tuple[str, ...]
    max_points: int
    sample_rate_hz: float | None = None
    bands: int = 8
    band_edges_hz: tuple[float, ...] | None = None
    peaks: int = 3
    bearing: BearingGeometry | None = None
    harmonics: int = 3
    envelope: bool = True
    shaft_hz: float | None = None
    shaft_tag: str | None = None
    shaft_per_hz: float = 1.0
    scale: float = 1.0
    offset: float = 0.0

    @classmethod
    def of(cls, name: str, settings: WaveformSettings, scale: float = 1.0, offset: float = 0.0) -> WindowPlan:
        """The plan of a profile tag named ``name`` with its ``[tags.waveform]`` settings."""
        b: BearingSettings | None = settings.bearing
        geometry = None
        faults = [f for f in settings.resolved_features if f.removesuffix("_energy") in FAULTS]
        if b is not None and faults:
            geometry = BearingGeometry(b.balls, b.ball_diameter, b.pitch_diameter, b.contact_angle_deg)
        per_hz = 60.0 if b is not None and b.shaft_unit == "rpm" else 1.0
        return cls(
            tag=name,
            features=settings.resolved_features,
            max_points=settings.max_points,
            sample_rate_hz=settings.sample_rate_hz,
            bands=settings.bands,
            band_edges_hz=None if settings.band_edges_hz is None else tuple(settings.band_edges_hz),
            peaks=settings.peaks,
            bearing=geometry,
            harmonics=b.harmonics if b is not None else 3,
            envelope=b.envelope if b is not None else True,
            shaft_hz=None if b is None or b.shaft_speed is None else b.shaft_speed / per_hz,
            shaft_tag=None if b is None else b.shaft_tag,
            shaft_per_hz=per_hz,
            scale=scale,
            offset=offset,
        )


def as_window(raw: Any, max_points: int) -> npt.NDArray[np.float64]:
    """A JSON or OPC UA array as a float64 window; WaveformError when it is not a usable one."""
    if isinstance(raw, np.ndarray):
        array = raw
    elif isinstance(raw, list | tuple):
        if len(raw) > max_points:  # before converting: a huge array costs nothing more than its check
            raise WaveformError(f"{len(raw)} points is over max_points ({max_points})")
        try:
            array = np.asarray(raw)
        except (ValueError, TypeError) as exc:  # ragged nesting
            raise WaveformError(f"not a flat array of numbers: {exc}") from None
    else:
        raise WaveformError(f"expected an array of numbers, got {_kind(raw)}")
    if array.ndim != 1:
        raise WaveformError(f"expected a flat array of numbers, got {array.ndim} dimensions")
    if array.dtype.kind not in "iuf":
        raise WaveformError("expected an array of numbers, got " + ("booleans" if array.dtype.kind == "b" else
                                                                     "other values (text, null or objects)"))
    if len(array) > max_points:
        raise WaveformError(f"{len(array)} points is over max_points ({max_points})")
    if len(array) < MIN_POINTS:
        raise WaveformError(f"{len(array)} points: a window needs at least {MIN_POINTS}")
    window = np.asarray(array, dtype=np.float64)
    if not np.isfinite(window).all():
        raise WaveformError("the array holds values that are not finite numbers")
    return window


def _kind(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, dict):
        return "an object"
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def window_samples(
    plan: WindowPlan,
    device: str,
    ts: float,
    values: Any,
    *,
    quality: Quality = Quality.GOOD,
    sample_rate_hz: float | None = None,
    shaft_hz: float | None = None,
) -> list[Sample]:
    """The feature samples of one window of ``plan.tag`` (``values``: the raw array, before scale and offset).

    ``sample_rate_hz`` is the window's own rate (read from its payload), else the plan's fixed one;
    ``shaft_hz`` the current shaft speed when it comes from another tag, else the plan's constant one. Without a
    shaft speed (none seen yet, or a stopped shaft) the bearing features are left out of this window.
    """
    window = as_window(values, plan.max_points)
    rate = plan.sample_rate_hz if sample_rate_hz is None else sample_rate_hz
    if rate is None or not math.isfinite(rate) or rate <= 0:
        raise WaveformError(f"sample rate {rate!r} is not a positive number")
    if plan.scale != 1.0 or plan.offset != 0.0:
        window = window * plan.scale + plan.offset
    shaft = plan.shaft_hz if shaft_hz is None else shaft_hz
    bearing = plan.bearing if shaft is not None and math.isfinite(shaft) and shaft > 0 else None
    edges = plan.band_edges_hz
    if edges is None:
        edges = tuple(float(e) for e in np.linspace(0.0, rate / 2, plan.bands + 1))
    f = waveform_features(
        window, rate, band_edges_hz=edges, n_peaks=plan.peaks, bearing=bearing,
        shaft_hz=shaft if bearing is not None else None, use_envelope=plan.envelope, harmonics=plan.harmonics,
    )
    values_by_name = f.as_dict()
    found = {
        **{name: values_by_name[name] for name in STATS},
        **{f"band_{i}_energy": e for i, e in enumerate(f.band_energies)},
        **{f"peak_{i}_hz": v for i, v in enumerate(f.peak_freqs_hz)},
        **{f"peak_{i}_amplitude": v for i, v in enumerate(f.peak_amplitudes)},
        **{f"{name}_energy": v for name, v in f.fault_energies.items()},
    }
    prefix = plan.tag + "."
    return [
        Sample(device, prefix + name, ts, float(found[name]), quality)
        for name in plan.features
        if name in found and math.isfinite(found[name])
    ]


class ShaftSpeeds:
    """The latest shaft speed per (device, tag), for waveform tags whose shaft speed is another tag's value.

    Bounded: past ``max_entries`` (devices named by topics can be many) the oldest entry is forgotten and
    counted in ``forgotten``.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self.latest: dict[tuple[str, str], float] = {}
        self.forgotten = 0

    def update(self, device: str, tag: str, value: object) -> None:
        """Record a sample value of a shaft-speed tag (numbers only; anything else is ignored)."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return
        key = (device, tag)
        if key not in self.latest and len(self.latest) >= self.max_entries:
            del self.latest[next(iter(self.latest))]
            self.forgotten += 1
        self.latest[key] = float(value)

    def hz(self, plan: WindowPlan, device: str) -> float | None:
        """The shaft speed in Hz for ``plan`` on ``device``: from its tag when it has one, else None."""
        if plan.shaft_tag is None:
            return None
        value = self.latest.get((device, plan.shaft_tag))
        return None if value is None else value / plan.shaft_per_hz
