"""Rolling-element bearing geometry and its characteristic defect frequencies.

The kinematic formulas (outer race fixed, inner race turning with the shaft at ``f_r`` Hz, pure rolling),
with ``r = (d / D) cos(phi)`` for ball diameter ``d``, pitch diameter ``D`` and contact angle ``phi``:

* FTF  (fundamental train / cage frequency)  = f_r / 2 * (1 - r)
* BPFO (ball pass frequency, outer race)     = n f_r / 2 * (1 - r)
* BPFI (ball pass frequency, inner race)     = n f_r / 2 * (1 + r)
* BSF  (ball spin frequency)                 = D f_r / (2 d) * (1 - r**2)

A defect on a race or a ball makes an impact at that rate; its tone (or, more often, the modulation of a
structural resonance at that rate) is what :func:`edge_agent.maintenance.features.fault_band_energies`
looks for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BearingGeometry", "FaultFrequencies"]


@dataclass(frozen=True, slots=True)
class FaultFrequencies:
    """Defect frequencies in Hz of one bearing at one shaft speed."""

    ftf: float
    bpfo: float
    bpfi: float
    bsf: float

    def as_dict(self) -> dict[str, float]:
        return {"ftf": self.ftf, "bpfo": self.bpfo, "bpfi": self.bpfi, "bsf": self.bsf}


@dataclass(frozen=True, slots=True)
class BearingGeometry:
    """A bearing as a device profile describes it (diameters in any one unit, the angle in degrees)."""

    n_balls: int
    ball_diameter: float
    pitch_diameter: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.n_balls < 1:
            raise ValueError("n_balls must be at least 1")
        if not 0 < self.ball_diameter < self.pitch_diameter:
            raise ValueError("need 0 < ball_diameter < pitch_diameter")
        if not 0 <= self.contact_angle_deg < 90:
            raise ValueError("contact_angle_deg must be in [0, 90)")

    def fault_frequencies(self, shaft_hz: float) -> FaultFrequencies:
        """FTF, BPFO, BPFI and BSF at a shaft speed of ``shaft_hz`` revolutions per second."""
        r = self.ball_diameter / self.pitch_diameter * math.cos(math.radians(self.contact_angle_deg))
        return FaultFrequencies(
            ftf=shaft_hz / 2 * (1 - r),
            bpfo=self.n_balls * shaft_hz / 2 * (1 - r),
            bpfi=self.n_balls * shaft_hz / 2 * (1 + r),
            bsf=self.pitch_diameter * shaft_hz / (2 * self.ball_diameter) * (1 - r * r),
        )
