"""The plant model: pure and deterministic, advanced by :meth:`Plant.step` on a simulated clock.

No I/O and no wall clock in here: the same seed and the same total simulated
time give the same states, parts and readings. The protocol servers read the
machines' attributes; :mod:`simulators.runner` maps the simulated clock onto
the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator

from simulators.bearing import Health, VibrationSensor, iso_utc
from simulators.cnc import CNC_ALARMS, CNC_PROGRAMS, CNC_REASONS, CncMachine, CncState
from simulators.machine import Machine, StateInterval, Summary
from simulators.packaging import LINE_REASONS, RECIPES, LineState, PackagingLine

__all__ = [
    "CNC_ALARMS",
    "CNC_PROGRAMS",
    "CNC_REASONS",
    "LINE_REASONS",
    "RECIPES",
    "CncMachine",
    "CncState",
    "Health",
    "LineState",
    "Machine",
    "PackagingLine",
    "Plant",
    "StateInterval",
    "Summary",
    "VibrationSensor",
    "iso_utc",
]

DEFAULT_SENSOR_LIFE_S = 8 * 3600.0


class Plant:
    """Machines ``cnc-1..N``, lines ``pack-1..M``, sensors ``vib-1..K`` and raw-waveform sensors ``vibw-1..W``
    on one simulated clock.

    Sensor ``vib-i`` reaches the danger level after about
    ``sensor_life_s * (1 + (i - 1) / 2)`` simulated seconds, so ``vib-1`` fails first.
    """

    def __init__(
        self,
        seed: int = 42,
        cnc: int = 2,
        lines: int = 1,
        sensors: int = 2,
        sensor_life_s: float = DEFAULT_SENSOR_LIFE_S,
        waveform_sensors: int = 0,
    ) -> None:
        if min(cnc, lines, sensors, waveform_sensors) < 0:
            raise ValueError("machine counts must be >= 0")
        if cnc > 247:
            raise ValueError("at most 247 CNC machines (Modbus unit ids 1-247)")
        self.seed = seed
        self.t = 0.0
        self.cnc = [CncMachine(f"cnc-{i}", seed) for i in range(1, cnc + 1)]
        self.lines = [PackagingLine(f"pack-{i}", seed) for i in range(1, lines + 1)]
        self.sensors = [
            VibrationSensor(f"vib-{i}", seed, failure_after_s=sensor_life_s * (1 + (i - 1) / 2))
            for i in range(1, sensors + 1)
        ]
        self.waveform_sensors = [  # publish raw acceleration windows (profile vibration_waveform)
            VibrationSensor(f"vibw-{i}", seed, failure_after_s=sensor_life_s * (1 + (i - 1) / 2))
            for i in range(1, waveform_sensors + 1)
        ]

    @property
    def machines(self) -> dict[str, CncMachine | PackagingLine | VibrationSensor]:
        """Every device by name."""
        return {m.name: m for m in self}

    def __iter__(self) -> Iterator[CncMachine | PackagingLine | VibrationSensor]:
        yield from self.cnc
        yield from self.lines
        yield from self.sensors
        yield from self.waveform_sensors

    def __getitem__(self, name: str) -> CncMachine | PackagingLine | VibrationSensor:
        for machine in self:
            if machine.name == name:
                return machine
        raise KeyError(name)

    def step(self, dt: float) -> None:
        """Advance every device by ``dt`` simulated seconds."""
        if dt < 0:
            raise ValueError(f"dt must be >= 0, got {dt}")
        for machine in self:
            machine.step(dt)
        self.t += dt
