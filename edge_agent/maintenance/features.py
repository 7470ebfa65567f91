"""Condition-monitoring features of vibration waveforms and scalar series: pure, vectorised numpy.

Every statistic works along the last axis, so one call handles one window (shape ``(n,)``) or a batch of
windows (shape ``(..., n)``). Spectra are one-sided and scaled so that their bins sum to the mean square
of the (windowed) signal: a band energy is the part of ``rms**2`` that lies in that band, and a sine of
amplitude ``A`` contributes ``A**2 / 2`` around its frequency.

``waveform_features`` bundles everything for one window, which is what a vibration tag (an MQTT array
payload or an OPC UA array with its sample rate) is turned into before anomaly detection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.maintenance.bearing import BearingGeometry

__all__ = [
    "Spectrum",
    "WaveformFeatures",
    "band_energies",
    "crest_factor",
    "envelope",
    "fault_band_energies",
    "kurtosis",
    "peak",
    "peak_to_peak",
    "rms",
    "skewness",
    "spectral_peaks",
    "spectrum",
    "trend_slope",
    "waveform_features",
]

Array = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike


def _as_float(x: ArrayLike) -> Array:
    return np.asarray(x, dtype=np.float64)


def _f64(x: Any) -> Array:
    """A numpy result as a float64 array (0-d for one window), for the type checker's sake."""
    return np.asarray(x, dtype=np.float64)


def rms(x: ArrayLike) -> Array:
    """Root mean square along the last axis."""
    a = _as_float(x)
    return _f64(np.sqrt(np.mean(a * a, axis=-1)))


def peak(x: ArrayLike) -> Array:
    """Largest absolute value along the last axis."""
    return _f64(np.max(np.abs(_as_float(x)), axis=-1))


def peak_to_peak(x: ArrayLike) -> Array:
    """Maximum minus minimum along the last axis."""
    return _f64(np.ptp(_as_float(x), axis=-1))


def crest_factor(x: ArrayLike) -> Array:
    """Peak over RMS (``sqrt(2)`` for a sine, rising with impulsive defects); 0 for a zero signal."""
    a = _as_float(x)
    r = rms(a)
    return np.divide(peak(a), r, out=np.zeros_like(r), where=r > 0)


def _standardised_moment(x: ArrayLike, order: int) -> Array:
    a = _as_float(x)
    centred = a - np.mean(a, axis=-1, keepdims=True)
    squared = centred * centred
    var = np.mean(squared, axis=-1)
    # Products, not ``**``: numpy's general power is ~30x slower than a multiply.
    moment = np.mean(squared * squared if order == 4 else squared * centred, axis=-1)
    return _f64(np.divide(moment, var ** (order / 2), out=np.zeros_like(var), where=var > 0))


def kurtosis(x: ArrayLike) -> Array:
    """Pearson kurtosis (not excess): 1.5 for a sine, 3 for Gaussian noise, large for impacts."""
    return _standardised_moment(x, 4)


def skewness(x: ArrayLike) -> Array:
    """Third standardised moment: 0 for a symmetric signal."""
    return _standardised_moment(x, 3)


@dataclass(frozen=True)
class Spectrum:
    """One-sided power spectrum: ``power[..., k]`` is the mean square in bin ``freqs[k]`` (Hz)."""

    freqs: Array
    power: Array

    @property
    def resolution(self) -> float:
        return float(self.freqs[1] - self.freqs[0]) if len(self.freqs) > 1 else 0.0

    @cached_property
    def cumulative(self) -> Array:
        """Running sum of ``power`` with a leading 0: the energy of bins ``[i, j)`` is ``c[j] - c[i]``."""
        out = np.zeros((*self.power.shape[:-1], self.power.shape[-1] + 1))
        np.cumsum(self.power, axis=-1, out=out[..., 1:])
        return out


@lru_cache(maxsize=16)
def _frequencies(n: int, sample_rate: float) -> Array:
    freqs = _f64(np.fft.rfftfreq(n, d=1.0 / sample_rate))
    freqs.flags.writeable = False
    return freqs


@lru_cache(maxsize=16)
def _window(kind: str, n: int) -> tuple[Array, float]:
    """A window of ``n`` points and the sum of its squares (cached: windows repeat)."""
    if kind == "hann":
        w = np.hanning(n + 1)[:-1]  # periodic Hann: exact for on-bin tones
    elif kind == "rect":
        w = np.ones(n)
    else:
        raise ValueError(f"unknown window {kind!r}")
    w.flags.writeable = False
    return w, float(np.sum(w * w))


def spectrum(x: ArrayLike, sample_rate: float, window: str = "hann", detrend: bool = True) -> Spectrum:
    """Power spectrum of ``x`` sampled at ``sample_rate`` Hz, scaled so its bins sum to the mean square.

    ``window`` is ``"hann"`` (default: little leakage for tones between bins) or ``"rect"``; ``detrend``
    removes the mean first so the DC bin does not leak into the low bands.
    """
    a = _as_float(x)
    n = a.shape[-1]
    if n < 2:
        raise ValueError("need at least 2 samples")
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    if detrend:
        a = a - np.mean(a, axis=-1, keepdims=True)
    w, power_sum = _window(window, n)
    coefficients = np.fft.rfft(a * w, axis=-1)
    power = (coefficients.real * coefficients.real + coefficients.imag * coefficients.imag) / (n * power_sum)
    power[..., 1 : (n + 1) // 2] *= 2.0  # fold the negative frequencies (not DC, not Nyquist)
    return Spectrum(_frequencies(n, float(sample_rate)), _f64(power))


def band_energies(spec: Spectrum, edges: ArrayLike) -> Array:
    """Energy (mean square) in each band ``[edges[i], edges[i+1])`` Hz; shape ``(..., len(edges) - 1)``."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError("edges must be at least two increasing frequencies")
    index = np.searchsorted(spec.freqs, e, side="left")
    return np.diff(spec.cumulative[..., index], axis=-1)


def _energy_around(spec: Spectrum, centres: Array, half_width: float) -> Array:
    cumulative = spec.cumulative
    lo = np.searchsorted(spec.freqs, centres - half_width, side="left")
    hi = np.searchsorted(spec.freqs, centres + half_width, side="right")
    return _f64(cumulative[..., hi] - cumulative[..., lo])


def spectral_peaks(spec: Spectrum, count: int = 5, min_hz: float = 0.0) -> tuple[Array, Array]:
    """The ``count`` largest local maxima of a 1-D spectrum above ``min_hz``: (frequencies, amplitudes).

    The amplitude of a peak is ``sqrt(2 * energy within 2 bins of it)``, the amplitude of a sine there.
    Sorted by amplitude, largest first; fewer than ``count`` when the spectrum has fewer maxima.
    """
    if spec.power.ndim != 1:
        raise ValueError("spectral_peaks takes the spectrum of one window")
    p = spec.power
    if len(p) < 3:
        return np.zeros(0), np.zeros(0)
    inner = (p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:]) & (spec.freqs[1:-1] >= min_hz)
    candidates = np.flatnonzero(inner) + 1
    top = candidates[np.argsort(p[candidates])[::-1][:count]]
    cumulative = spec.cumulative
    energy = cumulative[np.minimum(top + 3, len(p))] - cumulative[np.maximum(top - 2, 0)]
    amplitude = np.sqrt(2.0 * energy)
    order = np.argsort(amplitude)[::-1]
    return spec.freqs[top][order], amplitude[order]


def envelope(x: ArrayLike) -> Array:
    """Amplitude envelope ``|analytic signal|`` along the last axis (Hilbert transform by FFT)."""
    a = _as_float(x)
    a = a - np.mean(a, axis=-1, keepdims=True)
    n = a.shape[-1]
    # The analytic signal's spectrum is the one-sided spectrum doubled: rfft, then a complex inverse FFT.
    half = np.fft.rfft(a, axis=-1)
    half[..., 1 : (n + 1) // 2] *= 2.0
    full = np.zeros((*a.shape[:-1], n), dtype=np.complex128)
    full[..., : half.shape[-1]] = half
    return _f64(np.abs(np.fft.ifft(full, axis=-1)))


def fault_band_energies(
    spec: Spectrum,
    bearing: BearingGeometry,
    shaft_hz: float,
    harmonics: int = 1,
    half_width_hz: float | None = None,
) -> dict[str, Array]:
    """Energy around each bearing defect frequency (summed over its first ``harmonics`` multiples).

    ``half_width_hz`` defaults to 2.5 frequency bins, which holds a Hann-windowed tone. Pass the spectrum
    of :func:`envelope` to find defects that modulate a structural resonance (envelope analysis).
    """
    width = 2.5 * spec.resolution if half_width_hz is None else half_width_hz
    faults = bearing.fault_frequencies(shaft_hz).as_dict()
    multiples = np.arange(1, harmonics + 1, dtype=np.float64)
    centres = np.outer(np.fromiter(faults.values(), dtype=np.float64), multiples).ravel()
    energies = _energy_around(spec, centres, width).reshape((*spec.power.shape[:-1], len(faults), harmonics))
    totals = energies.sum(axis=-1)
    return {name: _f64(totals[..., i]) for i, name in enumerate(faults)}


def trend_slope(values: ArrayLike, times: ArrayLike | None = None) -> Array:
    """Least-squares slope along the last axis, per unit of ``times`` (default: per sample).

    For temperature and current trends: degrees per second when ``times`` are in seconds.
    """
    y = _as_float(values)
    t = np.arange(y.shape[-1], dtype=np.float64) if times is None else _as_float(times)
    t = np.broadcast_to(t, y.shape)
    tc = t - np.mean(t, axis=-1, keepdims=True)
    yc = y - np.mean(y, axis=-1, keepdims=True)
    denominator = np.sum(tc * tc, axis=-1)
    numerator = np.sum(tc * yc, axis=-1)
    return _f64(np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0))


@dataclass(frozen=True)
class WaveformFeatures:
    """The features of one waveform window (see :func:`waveform_features`)."""

    rms: float
    peak: float
    peak_to_peak: float
    crest_factor: float
    kurtosis: float
    skewness: float
    band_edges_hz: tuple[float, ...]
    band_energies: tuple[float, ...]
    peak_freqs_hz: tuple[float, ...]
    peak_amplitudes: tuple[float, ...]
    fault_energies: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """Flat ``name -> value`` mapping, the shape the agent stores as tags (``band_0``, ``bpfo``, ...)."""
        flat = {
            "rms": self.rms,
            "peak": self.peak,
            "peak_to_peak": self.peak_to_peak,
            "crest_factor": self.crest_factor,
            "kurtosis": self.kurtosis,
            "skewness": self.skewness,
        }
        flat.update({f"band_{i}": e for i, e in enumerate(self.band_energies)})
        flat.update({f"peak_{i}_hz": f for i, f in enumerate(self.peak_freqs_hz)})
        flat.update({f"peak_{i}_amplitude": a for i, a in enumerate(self.peak_amplitudes)})
        flat.update(self.fault_energies)
        return flat


def waveform_features(
    x: ArrayLike,
    sample_rate: float,
    *,
    band_edges_hz: Sequence[float] | None = None,
    n_peaks: int = 5,
    bearing: BearingGeometry | None = None,
    shaft_hz: float | None = None,
    use_envelope: bool = True,
    harmonics: int = 3,
) -> WaveformFeatures:
    """All features of one window ``x`` (1-D) sampled at ``sample_rate`` Hz.

    ``band_edges_hz`` defaults to eight equal bands up to Nyquist. With a ``bearing`` and ``shaft_hz``,
    ``fault_energies`` holds the energy around FTF/BPFO/BPFI/BSF (and ``harmonics`` multiples) in the
    envelope spectrum (``use_envelope``) or in the plain spectrum.
    """
    a = _as_float(x)
    if a.ndim != 1:
        raise ValueError("waveform_features takes one window; use the array functions for batches")
    spec = spectrum(a, sample_rate)
    edges = tuple(band_edges_hz) if band_edges_hz is not None else tuple(np.linspace(0, sample_rate / 2, 9))
    # The top edge is inclusive of the Nyquist bin.
    bands = band_energies(spec, np.r_[edges[:-1], np.nextafter(edges[-1], np.inf)])
    freqs, amplitudes = spectral_peaks(spec, n_peaks)
    faults: dict[str, float] = {}
    if bearing is not None:
        if shaft_hz is None:
            raise ValueError("a bearing needs shaft_hz")
        fault_spec = spectrum(envelope(a), sample_rate) if use_envelope else spec
        faults = {k: float(v) for k, v in fault_band_energies(fault_spec, bearing, shaft_hz, harmonics).items()}
    r = float(np.sqrt(np.dot(a, a) / len(a)))
    hi, lo = float(np.max(a)), float(np.min(a))
    pk = max(hi, -lo)
    centred = a - np.mean(a)
    squared = centred * centred
    var = float(np.mean(squared))
    return WaveformFeatures(
        rms=r,
        peak=pk,
        peak_to_peak=hi - lo,
        crest_factor=pk / r if r > 0 else 0.0,
        kurtosis=float(np.dot(squared, squared)) / len(a) / var**2 if var > 0 else 0.0,
        skewness=float(np.dot(squared, centred)) / len(a) / var**1.5 if var > 0 else 0.0,
        band_edges_hz=tuple(float(e) for e in edges),
        band_energies=tuple(float(e) for e in bands),
        peak_freqs_hz=tuple(float(f) for f in freqs),
        peak_amplitudes=tuple(float(v) for v in amplitudes),
        fault_energies=faults,
    )
