"""The ``[twin]`` table of the agent config: deadbands, debounce, bounds and stop reason texts.

```toml
[twin]
deadband_pct = 0.5           # float tags: a change event once the value moved by 0.5 % of its last sent value
min_interval_s = 1.0         # at most one change event per tag per second (later changes wait, then go)
max_tags = 1000              # tags kept per device (extra tags are counted, not kept)
trend_points = 240           # recent points per numeric tag for charts, kept only by a status page
                             # without a buffer to query (the agent's page charts from its buffer)
shift_starts = ["06:00", "14:00", "22:00"]   # local gateway time, for "parts this shift" without OEE

[twin.deadbands]             # absolute deadbands: "tag" for every device, "device.tag" for one
spindle_temp = 0.5
"cnc-1.spindle_load" = 2.0

[twin.stop_reasons.cnc_vmc]  # profile name -> reason code -> text shown to operators
"11" = "chip clearing"
```
"""

from __future__ import annotations

from pydantic import Field, field_validator

from edge_agent.profiles import Strict

__all__ = ["TwinSettings"]


class TwinSettings(Strict):
    """How twins are kept and when their changes become events."""

    deadband_pct: float = Field(default=0.5, ge=0, le=100, description="relative deadband of float tags, in %")
    min_interval_s: float = Field(default=1.0, ge=0, description="debounce: least time between events of a tag")
    deadbands: dict[str, float] = Field(default_factory=dict, description="absolute deadband per tag or device.tag")
    oee_deadband: float = Field(default=0.01, ge=0, description="OEE figures (0..1) change events past this step")
    max_tags: int = Field(default=1000, ge=1, le=100_000)
    trend_points: int = Field(
        default=240,
        ge=2,
        le=10_000,
        description="recent points per numeric tag kept in memory for charts, only where no buffer answers history",
    )
    timeline_segments: int = Field(default=2000, ge=10, le=100_000)
    recent_events: int = Field(default=50, ge=1, le=10_000)
    shift_starts: list[str] = Field(default_factory=lambda: ["06:00", "14:00", "22:00"])
    stop_reasons: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("deadbands")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if v < 0]
        if bad:
            raise ValueError(f"deadbands must be >= 0: {', '.join(sorted(bad))}")
        return value

    @field_validator("shift_starts")
    @classmethod
    def _clock_times(cls, value: list[str]) -> list[str]:
        for item in value:
            parts = item.split(":")
            ok = len(parts) == 2 and all(p.isdigit() for p in parts)
            if not ok or not (0 <= int(parts[0]) < 24 and 0 <= int(parts[1]) < 60):
                raise ValueError(f"shift start '{item}' is not a clock time HH:MM")
        return value
