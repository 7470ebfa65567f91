"""Model of a wireless vibration sensor on a degrading bearing (profile ``vibration_sensor``).

The bearing wears over ``failure_after_s`` simulated seconds. Its velocity
RMS trend rises from about 1.5 mm/s, slowly at first then faster (a power law
of the wear fraction), passing the alert level 4.5 mm/s at about three quarters of its
life and 7.1 mm/s (danger) shortly before ``failure_after_s``; it keeps
rising after that. The crest factor bumps up in mid-life (early impulsive
defects) and falls back as the vibration becomes broadband; the surface
temperature climbs with wear; the battery drains slowly. Readings carry
measurement noise around these trends.

Waveform mode (:meth:`VibrationSensor.waveform`, profile ``vibration_waveform``):
a window of raw acceleration (g), ``WAVEFORM_POINTS`` points at
``WAVEFORM_RATE_HZ``, as a sensor without on-board processing sends it. It holds
the shaft's 1x and 2x tones, broadband noise and an outer-race defect: impacts at
the bearing's BPFO (a 6205 bearing, ``BEARING``) that ring a structural resonance
at ``RESONANCE_HZ``. The spall starts at ``DEFECT_ONSET`` of the life (before it
the impacts stay at a faint, constant 0.01 g) and its impacts grow from there to
``DEFECT_G_AT_FAILURE``, so the BPFO energy of the envelope spectrum and the
kurtosis climb long before the RMS reaches the alert level.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import numpy as np

from simulators.machine import StateInterval


class Health(IntEnum):
    """Zone of the RMS trend, by the profile's alarm limits."""

    NORMAL = 1
    ALERT = 2  # trend >= 4.5 mm/s
    DANGER = 3  # trend >= 7.1 mm/s


ALERT_RMS = 4.5
DANGER_RMS = 7.1
RMS_AT_FAILURE = 7.5
WEAR_EXPONENT = 2.5
G_PER_MM_S = 0.075  # RMS acceleration (g) per mm/s of velocity RMS at the dominant frequency
HEALTH_LIMITS = {Health.NORMAL: ALERT_RMS, Health.ALERT: DANGER_RMS}

# waveform mode
WAVEFORM_RATE_HZ = 8192.0
WAVEFORM_POINTS = 4096
SHAFT_RPM = 1797.0
BEARING = {"balls": 9, "ball_diameter": 7.94, "pitch_diameter": 39.04, "contact_angle_deg": 0.0}  # SKF 6205
RESONANCE_HZ = 2600.0
RING_DOWN_S = 0.0015
DEFECT_ONSET = 0.35  # fraction of the life at which the outer-race spall starts
DEFECT_G_AT_FAILURE = 3.0  # peak acceleration of one impact at failure (g)


def iso_utc(epoch: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, e.g. ``2026-11-22T08:00:00.000Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class VibrationSensor:
    """A vibration and temperature sensor on a bearing that degrades over its life.

    ``age_s`` starts the bearing part-way through its life. ``log`` holds the
    ground truth as :class:`~simulators.machine.StateInterval` entries whose
    state is the :class:`Health` zone of the noise-free RMS trend.
    """

    kind = "vibration"

    def __init__(self, name: str, seed: int, failure_after_s: float = 6 * 3600.0, age_s: float = 0.0) -> None:
        if failure_after_s <= 0:
            raise ValueError("failure_after_s must be > 0")
        self.name = name
        self.seed = seed
        self.failure_after_s = failure_after_s
        self.age_s = age_s
        self.t = 0.0
        ev = random.Random(f"{seed}:{name}:events")
        self._noise = random.Random(f"{seed}:{name}:noise")
        self._rms0 = ev.uniform(1.35, 1.65)
        self._ambient = ev.uniform(30.0, 35.0)
        self._battery0 = ev.uniform(75.0, 98.0)
        self._drain_per_h = ev.uniform(0.3, 0.6)
        self.messages = 0
        self.last_telemetry: dict[str, Any] | None = None
        self._rng = np.random.default_rng(ev.getrandbits(64))
        self._shaft_rpm = SHAFT_RPM * ev.uniform(0.995, 1.005)
        self.log: list[StateInterval] = [StateInterval(int(self._health_at(0.0)), 0, 0.0)]

    # -- trends (noise free) --------------------------------------------------

    def wear(self, t: float | None = None) -> float:
        """Fraction of the bearing's life used at simulated time ``t`` (default now); may exceed 1."""
        t = self.t if t is None else t
        return max(0.0, (self.age_s + t) / self.failure_after_s)

    def trend_rms(self, t: float | None = None) -> float:
        return self._rms0 + (RMS_AT_FAILURE - self._rms0) * self.wear(t) ** WEAR_EXPONENT

    def trend_crest(self, t: float | None = None) -> float:
        return 3.0 + 2.6 * math.exp(-(((self.wear(t) - 0.55) / 0.2) ** 2))

    def trend_temperature(self, t: float | None = None) -> float:
        return self._ambient + 6.0 + 30.0 * self.wear(t) ** 3

    def battery(self, t: float | None = None) -> int:
        t = self.t if t is None else t
        return max(0, round(self._battery0 - self._drain_per_h * t / 3600.0))

    def time_to_rms(self, level: float) -> float:
        """Simulated time at which the RMS trend reaches ``level`` (0 if it already had at start)."""
        if level <= self._rms0:
            return 0.0
        x = ((level - self._rms0) / (RMS_AT_FAILURE - self._rms0)) ** (1.0 / WEAR_EXPONENT)
        return max(0.0, x * self.failure_after_s - self.age_s)

    @property
    def health(self) -> Health:
        return self._health_at(self.t)

    @property
    def state(self) -> int:
        return int(self.health)

    def _health_at(self, t: float) -> Health:
        rms = self.trend_rms(t)
        if rms >= DANGER_RMS:
            return Health.DANGER
        return Health.ALERT if rms >= ALERT_RMS else Health.NORMAL

    # -- clock --------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance the simulated clock by ``dt`` seconds, logging zone changes at their exact time."""
        if dt < 0 or math.isnan(dt):
            raise ValueError(f"dt must be >= 0, got {dt}")
        target = self.t + dt
        while (zone := Health(self.log[-1].state)) in HEALTH_LIMITS:
            when = self.time_to_rms(HEALTH_LIMITS[zone])
            if when > target:
                break
            self.log[-1].end = when
            self.log.append(StateInterval(int(zone) + 1, 0, when))
        self.t = target

    def intervals(self) -> list[StateInterval]:
        out = [StateInterval(iv.state, iv.reason, iv.start, iv.end) for iv in self.log]
        out[-1].end = self.t
        return out

    # -- readings -------------------------------------------------------------

    def bpfo_hz(self, shaft_rpm: float | None = None) -> float:
        """Outer-race ball pass frequency of the bearing at ``shaft_rpm`` (default: its own speed)."""
        rpm = self._shaft_rpm if shaft_rpm is None else shaft_rpm
        r = BEARING["ball_diameter"] / BEARING["pitch_diameter"] * math.cos(math.radians(BEARING["contact_angle_deg"]))
        return BEARING["balls"] * rpm / 60.0 / 2 * (1 - r)

    @property
    def defect_onset_s(self) -> float:
        """Simulated time at which the outer-race spall starts (0 if it had at start)."""
        return max(0.0, DEFECT_ONSET * self.failure_after_s - self.age_s)

    def defect_g(self, t: float | None = None) -> float:
        """Peak acceleration (g) of one outer-race impact: faint until the spall starts, then growing."""
        grown = max(0.0, self.wear(t) - DEFECT_ONSET) / (1.0 - DEFECT_ONSET)
        return 0.01 + DEFECT_G_AT_FAILURE * grown**1.5

    def waveform(self, now_epoch: float, points: int = WAVEFORM_POINTS, rate_hz: float = WAVEFORM_RATE_HZ
                 ) -> dict[str, Any]:
        """One window of raw acceleration (g) stamped ``now_epoch``, with its sample rate and shaft speed."""
        rng = self._rng
        rpm = self._shaft_rpm * (1 + rng.normal(0.0, 0.001))
        shaft_hz = rpm / 60.0
        t = np.arange(points) / rate_hz
        base = self._rms0 * G_PER_MM_S
        x = base * (1.1 * np.sin(2 * np.pi * shaft_hz * t + rng.uniform(0, 2 * np.pi))
                    + 0.4 * np.sin(4 * np.pi * shaft_hz * t + rng.uniform(0, 2 * np.pi)))
        x += rng.normal(0.0, 0.5 * base, points)
        # outer-race impacts at BPFO (with a little slip), each ringing the resonance down
        period = 1.0 / self.bpfo_hz(rpm)
        times = np.arange(rng.uniform(0, period), points / rate_hz, period)
        times += rng.normal(0.0, 0.01 * period, len(times))
        impulses = np.zeros(points)
        index = np.clip(np.round(times * rate_hz).astype(int), 0, points - 1)
        np.add.at(impulses, index, self.defect_g() * rng.uniform(0.8, 1.2, len(index)))
        kt = np.arange(int(6 * RING_DOWN_S * rate_hz)) / rate_hz
        ring = np.exp(-kt / RING_DOWN_S) * np.sin(2 * np.pi * RESONANCE_HZ * kt)
        x += np.convolve(impulses, ring)[:points]
        message = {
            "ts": iso_utc(now_epoch),
            "sample_rate_hz": rate_hz,
            "shaft_rpm": round(rpm, 1),
            "accel": np.round(x, 5).tolist(),
        }
        self.messages += 1
        return message

    def telemetry(self, now_epoch: float) -> dict[str, Any]:
        """One reading, shaped like the profile's example message, stamped ``now_epoch``."""
        n = self._noise
        rms = self.trend_rms() * math.exp(n.gauss(0.0, 0.05))
        crest = max(1.5, self.trend_crest() + n.gauss(0.0, 0.12))
        peak = rms * G_PER_MM_S * crest
        message = {
            "ts": iso_utc(now_epoch),
            "vibration": {"rms": round(rms, 2), "peak": round(peak, 3), "crest": round(crest, 2)},
            "temperature": round(self.trend_temperature() + n.gauss(0.0, 0.15), 1),
            "battery": self.battery(),
        }
        self.messages += 1
        self.last_telemetry = message
        return message
