"""What a twin knows about its device before any data: tags, units, state signals, location.

:class:`TwinSpec` is built once per device from its profile and the config
(:func:`spec_for`); everything else in the twin package reads only the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge_agent.profiles import Profile
from edge_agent.twin.settings import TwinSettings

__all__ = ["FLOAT_TYPES", "DeviceView", "LocationView", "TagSpec", "TwinSpec", "spec_for"]

FLOAT_TYPES = frozenset({"float32", "float64"})
AMPLITUDE_FEATURES = frozenset({"rms", "peak", "peak_to_peak"})  # in the waveform's own unit
REASON_TAG = "stop_reason"


class LocationView(Protocol):
    """Where a device stands (``edge_agent.config.Location``)."""

    @property
    def site(self) -> str: ...

    @property
    def area(self) -> str: ...

    @property
    def line(self) -> str: ...


class DeviceView(Protocol):
    """The parts of a configured device the twin needs (``edge_agent.config.Device``)."""

    @property
    def name(self) -> str: ...

    @property
    def profile(self) -> Profile: ...

    @property
    def location(self) -> LocationView: ...


@dataclass(frozen=True, slots=True)
class TagSpec:
    """One tag: unit and type from the profile, the deadband its change events use."""

    name: str
    unit: str = ""
    type: str = "float64"
    description: str = ""
    deadband: float = 0.0
    relative: bool = False
    writable: bool = False
    min: float | None = None
    max: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "unit": self.unit, "type": self.type, "description": self.description,
            "writable": self.writable, "min": self.min, "max": self.max,
        }


@dataclass(frozen=True)
class TwinSpec:
    """Static facts about one device."""

    device: str
    profile: str = ""
    model: str = ""
    vendor: str = ""
    protocol: str = ""
    location: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, TagSpec] = field(default_factory=dict)
    state_tag: str | None = None
    state_codes: Mapping[str, str] = field(default_factory=dict)
    run_tag: str | None = None
    reason_tag: str | None = None
    reason_texts: Mapping[str, str] = field(default_factory=dict)
    good_counter: str | None = None
    scrap_counter: str | None = None
    ideal_cycle_time_s: float | None = None
    alarm_limits: tuple[Mapping[str, Any], ...] = ()
    deadband_pct: float = 0.5

    @property
    def has_state(self) -> bool:
        return self.state_tag is not None or self.run_tag is not None

    def tag(self, name: str) -> TagSpec:
        """The tag's spec; tags the profile does not list (Sparkplug metrics) get a float default."""
        spec = self.tags.get(name)
        if spec is None:
            return TagSpec(name, deadband=self.deadband_pct / 100.0, relative=True)
        return spec

    def meta(self) -> dict[str, Any]:
        return {
            "profile": self.profile, "model": self.model, "vendor": self.vendor, "protocol": self.protocol,
            "location": dict(self.location), "tags": [t.as_dict() for t in self.tags.values()],
            "state_codes": dict(self.state_codes), "state_tag": self.state_tag, "run_tag": self.run_tag,
            "reason_tag": self.reason_tag, "reason_texts": dict(self.reason_texts),
            "ideal_cycle_time_s": self.ideal_cycle_time_s,
            "alarm_limits": [dict(a) for a in self.alarm_limits],
        }


def spec_for(device: DeviceView, settings: TwinSettings | None = None) -> TwinSpec:
    """Build the spec of ``device``: deadbands from the config, else the profile's alarm deadband,
    else the tag type (floats: ``deadband_pct`` of the last value; other types: every change)."""
    settings = settings or TwinSettings()
    profile = device.profile
    alarm_deadband = {a.tag: a.deadband for a in profile.alarms if a.deadband > 0}

    def deadband_of(name: str, numeric: bool) -> tuple[float, bool]:
        explicit = settings.deadbands.get(f"{device.name}.{name}", settings.deadbands.get(name))
        if explicit is not None:
            return explicit, False
        if name in alarm_deadband:
            return alarm_deadband[name], False
        return (settings.deadband_pct / 100.0, True) if numeric else (0.0, False)

    tags: dict[str, TagSpec] = {}
    for tag in profile.tags:
        waveform = getattr(tag, "waveform", None)
        if waveform is not None:  # the array is never a twin value: its features are
            for name in waveform.feature_tags(tag.name):
                feature = name[len(tag.name) + 1 :]
                unit = tag.unit if feature in AMPLITUDE_FEATURES else ""
                tags[name] = TagSpec(name, unit, "float64", f"{feature} of {tag.name}", *deadband_of(name, True))
            continue
        deadband, relative = deadband_of(tag.name, tag.type in FLOAT_TYPES or tag.scale != 1.0)
        tags[tag.name] = TagSpec(
            tag.name, tag.unit, tag.type, tag.description, deadband, relative,
            bool(getattr(tag, "writable", False)), getattr(tag, "min", None), getattr(tag, "max", None),
        )
    oee = profile.oee
    info = profile.profile
    location = device.location
    return TwinSpec(
        device=device.name,
        profile=info.name,
        model=info.model,
        vendor=info.vendor,
        protocol=profile.protocol,
        location={"site": location.site, "area": location.area, "line": location.line},
        tags=tags,
        state_tag=oee.state_tag if oee else None,
        state_codes=dict(oee.state_codes) if oee else {},
        run_tag=oee.run_tag if oee else None,
        reason_tag=REASON_TAG if REASON_TAG in tags else None,
        reason_texts=settings.stop_reasons.get(info.name, {}),
        good_counter=oee.good_counter if oee else None,
        scrap_counter=oee.scrap_counter if oee else None,
        ideal_cycle_time_s=oee.ideal_cycle_time_s if oee else None,
        alarm_limits=tuple(a.model_dump() for a in profile.alarms),
        deadband_pct=settings.deadband_pct,
    )
