"""Device profiles: what a device model exposes, declared once per model.

A profile is a TOML file (see device_profiles/ and docs in README) with a
``[profile]`` header, a list of ``[[tags]]`` whose address keys depend on the
protocol, an optional ``[oee]`` table naming the OEE signals and an optional
list of ``[[alarms]]`` limits. It is validated strictly: unknown keys,
wrong types and impossible addresses are errors with file, line and key.
"""

from __future__ import annotations

import difflib
from functools import cached_property
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from edge_agent.errors import ConfigError
from edge_agent.validation import format_errors, key_lines, line_of, load_toml

DataType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"
]
REGISTER_COUNT = {
    "bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2,
    "int64": 4, "uint64": 4, "float32": 2, "float64": 4,
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TagBase(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
    description: str = ""
    unit: str = ""
    type: DataType = "float64"
    scale: float = 1.0
    offset: float = 0.0

    def convert(self, raw: Any) -> Any:
        """Apply scale and offset to a numeric raw value; other types pass through."""
        if isinstance(raw, bool) or self.type in ("bool", "string"):
            return raw
        if self.scale == 1.0 and self.offset == 0.0:
            return raw
        return raw * self.scale + self.offset


class BearingSettings(Strict):
    """``[tags.waveform.bearing]``: the bearing a vibration sensor watches and its shaft speed.

    Its defect frequencies (FTF, BPFO, BPFI, BSF; edge_agent/maintenance/bearing.py) follow from the geometry and
    the shaft speed: a constant ``shaft_speed``, or the latest value of another tag of the device (``shaft_tag``).
    """

    balls: int = Field(ge=1, description="number of rolling elements")
    ball_diameter: float = Field(gt=0, description="rolling element diameter (any unit, the same as pitch_diameter)")
    pitch_diameter: float = Field(gt=0, description="pitch circle diameter")
    contact_angle_deg: float = Field(default=0.0, ge=0, lt=90, description="contact angle in degrees")
    shaft_speed: float | None = Field(default=None, gt=0, description="constant shaft speed, in shaft_unit")
    shaft_tag: str | None = Field(default=None, description="or: the tag whose latest value is the shaft speed")
    shaft_unit: Literal["hz", "rpm"] = Field(default="hz", description="unit of shaft_speed or of shaft_tag's value")
    harmonics: int = Field(default=3, ge=1, le=10, description="multiples of each defect frequency summed")
    envelope: bool = Field(default=True, description="look for the defects in the envelope spectrum")

    @model_validator(mode="after")
    def _check(self) -> BearingSettings:
        if self.ball_diameter >= self.pitch_diameter:
            raise ValueError(
                f"ball_diameter ({self.ball_diameter:g}) must be smaller than pitch_diameter ({self.pitch_diameter:g})"
            )
        if (self.shaft_speed is None) == (self.shaft_tag is None):
            raise ValueError("give exactly one of 'shaft_speed' or 'shaft_tag'")
        return self


class WaveformSettings(Strict):
    """``[tags.waveform]``: the tag carries an array (a window of raw vibration) turned into feature tags.

    The array is never stored; each window gives one sample per feature, named ``<tag>.<feature>``
    (edge_agent/maintenance/waveform.py lists the features and their groups).
    """

    sample_rate_hz: float | None = Field(default=None, gt=0, le=10_000_000, description="sample rate of the array")
    max_points: int = Field(
        default=65_536, ge=16, le=1_048_576, description="longer arrays are counted as bad and skipped"
    )
    features: list[str] | None = Field(
        default=None,
        description="features or groups (stats, bands, peaks, bearing) to emit; default: stats, bands and, "
        "with a bearing, bearing",
    )
    bands: int = Field(default=8, ge=1, le=64, description="equal frequency bands from 0 to half the sample rate")
    band_edges_hz: list[float] | None = Field(
        default=None, min_length=2, description="or: band edges in Hz, increasing (n edges give n - 1 bands)"
    )
    peaks: int = Field(default=3, ge=1, le=20, description="spectral peaks the 'peaks' group reports")
    bearing: BearingSettings | None = None

    @model_validator(mode="after")
    def _check(self) -> WaveformSettings:
        edges = self.band_edges_hz
        if edges is not None:
            if "bands" in self.model_fields_set:
                raise ValueError("give 'bands' or 'band_edges_hz', not both")
            if edges[0] < 0 or any(b <= a for a, b in pairwise(edges)):
                raise ValueError("band_edges_hz: edges must be >= 0 and increasing")
            if self.sample_rate_hz is not None and edges[-1] > self.sample_rate_hz / 2:
                raise ValueError(
                    f"band_edges_hz: the last edge ({edges[-1]:g} Hz) is above half the sample rate "
                    f"({self.sample_rate_hz / 2:g} Hz)"
                )
        _ = self.resolved_features  # raises on unknown names
        return self

    @property
    def band_count(self) -> int:
        return self.bands if self.band_edges_hz is None else len(self.band_edges_hz) - 1

    @cached_property
    def resolved_features(self) -> tuple[str, ...]:
        """The feature names emitted, in order (groups expanded)."""
        from edge_agent.maintenance.waveform import resolve_features

        return resolve_features(self.features, self.band_count, self.peaks, self.bearing is not None)

    def feature_tags(self, tag: str) -> list[str]:
        """The names of the samples a waveform tag named ``tag`` gives."""
        return [f"{tag}.{name}" for name in self.resolved_features]


def _check_waveform_type(tag: TagBase, waveform: WaveformSettings | None) -> None:
    if waveform is not None and tag.type in ("bool", "string"):
        raise ValueError(f"a waveform is an array of numbers: type must be numeric, got '{tag.type}'")


class ModbusTag(TagBase):
    table: Literal["holding", "input", "coil", "discrete"] = "holding"
    address: int = Field(ge=0, le=65535)
    order: Literal["ABCD", "DCBA", "BADC", "CDAB"] = "ABCD"
    bit: int | None = Field(default=None, ge=0, le=15)
    length: int | None = Field(default=None, ge=1, le=125)
    writable: bool = Field(default=False, description="the agent may write this tag (a setpoint)")
    min: float | None = Field(default=None, description="lowest value a write may set (engineering units)")
    max: float | None = Field(default=None, description="highest value a write may set (engineering units)")

    @model_validator(mode="after")
    def _check_write(self) -> ModbusTag:
        if (self.min is not None or self.max is not None) and not self.writable:
            raise ValueError("'min' and 'max' limit writes: they need 'writable = true'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min:g}) is above 'max' ({self.max:g})")
        if self.writable and self.table in ("input", "discrete"):
            raise ValueError(f"table '{self.table}' is read-only: only holding registers and coils are writable")
        if self.writable and self.bit is not None:
            raise ValueError("a 'bit' of a register cannot be writable (a read-modify-write is not atomic)")
        if self.writable and self.type in ("bool", "string") and (self.min is not None or self.max is not None):
            raise ValueError(f"'min' and 'max' apply to numbers, not to type '{self.type}'")
        return self

    @model_validator(mode="after")
    def _check_address(self) -> ModbusTag:
        if self.table in ("coil", "discrete") and self.type != "bool":
            raise ValueError(f"table '{self.table}' holds single bits: type must be 'bool', got '{self.type}'")
        if self.type == "string" and self.length is None:
            raise ValueError("type 'string' needs 'length' (number of registers)")
        if self.bit is not None and (self.table not in ("holding", "input") or self.type != "bool"):
            raise ValueError("'bit' applies only to type 'bool' in a holding or input register")
        last = self.address + self.register_count - 1
        if last > 65535:
            raise ValueError(
                f"address {self.address} with type '{self.type}' needs {self.register_count} registers "
                f"and runs past 65535"
            )
        return self

    @property
    def register_count(self) -> int:
        if self.table in ("coil", "discrete"):
            return 1
        if self.type == "string":
            return self.length or 1
        return REGISTER_COUNT[self.type]


class OpcuaTag(TagBase):
    node_id: str | None = None
    browse_path: str | None = None
    waveform: WaveformSettings | None = Field(
        default=None, description="the node is a Double or Float array: a vibration window turned into features"
    )

    @model_validator(mode="after")
    def _one_address(self) -> OpcuaTag:
        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError("give exactly one of 'node_id' or 'browse_path'")
        _check_waveform_type(self, self.waveform)
        if self.waveform is not None and self.waveform.sample_rate_hz is None:
            raise ValueError("waveform: an OPC UA array needs 'sample_rate_hz'")
        return self


class MqttWaveformSettings(WaveformSettings):
    """``[tags.waveform]`` of an MQTT tag: the sample rate may also come with each payload."""

    sample_rate_field: str | None = Field(
        default=None, description="or: dotted path of the sample rate (Hz) in each JSON payload"
    )

    @model_validator(mode="after")
    def _one_rate(self) -> MqttWaveformSettings:
        if (self.sample_rate_hz is None) == (self.sample_rate_field is None):
            raise ValueError("give exactly one of 'sample_rate_hz' or 'sample_rate_field'")
        return self


class MqttTag(TagBase):
    topic: str | None = None
    field: str | None = None
    waveform: MqttWaveformSettings | None = Field(
        default=None, description="the field is a JSON array: a vibration window turned into features"
    )

    @model_validator(mode="after")
    def _check_waveform(self) -> MqttTag:
        _check_waveform_type(self, self.waveform)
        return self


class OeeSignals(Strict):
    state_tag: str | None = None
    state_codes: dict[str, Literal["running", "unplanned_stop", "planned_stop", "changeover", "excluded"]] = {}
    run_tag: str | None = None
    good_counter: str | None = None
    scrap_counter: str | None = None
    total_counter: str | None = None
    part_tag: str | None = Field(
        default=None,
        description="tag of per-part messages (one sample per part, good or scrap by its value) instead of counters",
    )
    part_good_values: list[str] = Field(
        default=["ok", "good", "true", "1"], min_length=1, description="values of part_tag that mean a good part"
    )
    part_scrap_values: list[str] = Field(
        default=["nok", "scrap", "bad", "false", "0"], description="values of part_tag that mean a scrap part"
    )
    ideal_cycle_time_s: float = Field(gt=0)
    micro_stop_s: float = Field(default=120.0, ge=0)

    @model_validator(mode="after")
    def _some_state(self) -> OeeSignals:
        if self.state_tag is None and self.run_tag is None:
            raise ValueError("give 'state_tag' or 'run_tag'")
        return self

    @model_validator(mode="after")
    def _parts_one_way(self) -> OeeSignals:
        if self.part_tag is None:
            return self
        counters = [n for n in ("good_counter", "scrap_counter", "total_counter") if getattr(self, n) is not None]
        if counters:
            raise ValueError(f"'part_tag' counts parts one message at a time: leave out {', '.join(counters)}")
        good = {v.strip().lower() for v in self.part_good_values}
        both = sorted(good & {v.strip().lower() for v in self.part_scrap_values})
        if both:
            raise ValueError(f"part_good_values and part_scrap_values both hold {', '.join(both)}")
        return self


class AlarmLimit(Strict):
    tag: str
    hihi: float | None = None
    hi: float | None = None
    lo: float | None = None
    lolo: float | None = None
    deadband: float = Field(default=0.0, ge=0)
    on_delay_s: float = Field(default=0.0, ge=0)


class RulSettings(Strict):
    """``[maintenance.rul]``: remaining useful life at the edge through a TFLite model (docs/predictive-maintenance.md).

    One model input row per machine cycle: a cycle ends when ``cycle_tag`` changes value (the sensors of the same
    message or poll belong to it) or every ``cycle_interval_s`` seconds of sample time.
    """

    model: str | None = Field(
        default=None, description="TFLite model file, relative to the profile (default: the shipped FD001 model)"
    )
    sensors: dict[str, str] = Field(description="model input sensor -> the device tag that measures it")
    cycle_tag: str | None = Field(default=None, description="tag whose change of value ends a machine cycle")
    cycle_interval_s: float | None = Field(default=None, gt=0, description="or: one cycle every this many seconds")
    horizon: float = Field(gt=0, description="recommend maintenance when the RUL falls below this")
    horizon_unit: Literal["cycles", "h"] = Field(default="cycles", description="unit of horizon and hysteresis")
    hysteresis: float | None = Field(
        default=None, ge=0, description="re-arm once the RUL is back above horizon + this (default 20% of horizon)"
    )
    min_cycles: int | None = Field(
        default=None, ge=1, description="cycles seen before the first estimate (default: the model's window)"
    )

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> RulSettings:
        if (self.cycle_tag is None) == (self.cycle_interval_s is None):
            raise ValueError("give exactly one of 'cycle_tag' or 'cycle_interval_s'")
        folder = info.context.get("profile_dir") if isinstance(info.context, dict) else None
        return self.check_model(None if folder is None else Path(folder))

    def model_path(self, profile_dir: Path | None = None) -> Path:
        """The model file: the shipped one by default, else relative to the profile's folder."""
        if self.model is None:
            from edge_agent.maintenance.rul import DEFAULT_MODEL

            return DEFAULT_MODEL
        path = Path(self.model)
        return path if path.is_absolute() or profile_dir is None else profile_dir / path

    def check_model(self, profile_dir: Path | None) -> RulSettings:
        """Read the model card: every sensor it takes must be mapped, and nothing else; the model path resolved."""
        from edge_agent.maintenance.rul import CARD_SUFFIX, ModelCard
        from edge_agent.maintenance.rul_data import RulError

        path = self.model_path(profile_dir)
        if not path.is_file():
            raise ValueError(f"model: file '{self.model}' not found (looked for {path})")
        try:
            card = ModelCard.read(path.with_suffix(CARD_SUFFIX))
        except RulError as exc:
            raise ValueError(f"model: {exc}") from None
        missing = [s for s in card.sensors if s not in self.sensors]
        extra = sorted(s for s in self.sensors if s not in card.sensors)
        if missing:
            raise ValueError(f"sensors: the model also takes {', '.join(missing)}: map each to a tag")
        if extra:
            raise ValueError(f"sensors: the model takes no {', '.join(extra)} (it takes {', '.join(card.sensors)})")
        if self.model is None:
            return self
        return self.model_copy(update={"model": str(path.resolve())})


class MaintenanceSettings(Strict):
    """``[maintenance]``: anomaly detectors per tag, the health index, remaining useful life, recommendations."""

    anomaly_tags: list[str] = Field(default=[], description="tags scored by a streaming anomaly detector")
    detector: Literal["tail-ensemble", "gaussian"] = "tail-ensemble"
    warmup: int = Field(default=750, ge=10, description="points learned before scoring starts")
    threshold: float = Field(default=0.5, gt=0, le=1, description="anomaly score that raises the alarm")
    hysteresis: float = Field(default=0.1, ge=0, le=1)
    clear_after: int = Field(default=30, ge=1, description="points below threshold - hysteresis to clear")
    smoothing: int = Field(
        default=30, ge=1, description="points of the moving average of each anomaly score in the health index"
    )
    health_floor: float | None = Field(
        default=None, ge=0, le=100, description="recommend maintenance when the health index falls below this"
    )
    health_hysteresis: float = Field(
        default=10.0, ge=0, le=100, description="re-arm once the health index is back above floor + this"
    )
    rul: RulSettings | None = None


class ProfileInfo(Strict):
    name: str
    vendor: str = ""
    model: str = ""
    description: str = ""


class MqttTopics(Strict):
    topic: str = Field(description="default topic; {device} is replaced by the device's topic id")
    timestamp_field: str | None = None
    device_from_topic: int | None = Field(
        default=None, ge=0, description="0-based topic segment (a '+' wildcard) naming the device of each message"
    )


class _ProfileBase(Strict):
    profile: ProfileInfo
    oee: OeeSignals | None = None
    alarms: list[AlarmLimit] = []
    maintenance: MaintenanceSettings | None = None

    def sample_tags(self) -> list[str]:
        """The tag names of the samples this profile gives: scalar tags, and each waveform tag's features."""
        out: list[str] = []
        for tag in self.tags:  # type: ignore[attr-defined]
            waveform: WaveformSettings | None = getattr(tag, "waveform", None)
            out += [tag.name] if waveform is None else waveform.feature_tags(tag.name)
        return out

    @model_validator(mode="after")
    def _check_refs(self) -> Any:
        tags = self.tags  # type: ignore[attr-defined]
        names = [t.name for t in tags]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate tag names: {', '.join(dupes)}")
        waveforms = {t.name: t.waveform for t in tags if getattr(t, "waveform", None) is not None}
        emitted = self.sample_tags()
        clash = sorted({n for n in emitted if emitted.count(n) > 1})
        if clash:
            raise ValueError(f"tag names clash with waveform feature names: {', '.join(clash)}")
        for i, tag in enumerate(tags):
            bearing = tag.waveform.bearing if tag.name in waveforms else None
            ref = bearing.shaft_tag if bearing is not None else None
            if ref is not None and (ref in waveforms or ref not in emitted):
                what = "is a waveform tag" if ref in waveforms else "is not a tag of this profile"
                raise ValueError(f"tags[{i}].waveform.bearing.shaft_tag: '{ref}' {what}: name a scalar tag")
        known = set(emitted)
        refs: list[tuple[str, str | None]] = []
        if self.oee:
            refs += [
                ("oee.state_tag", self.oee.state_tag),
                ("oee.run_tag", self.oee.run_tag),
                ("oee.good_counter", self.oee.good_counter),
                ("oee.scrap_counter", self.oee.scrap_counter),
                ("oee.total_counter", self.oee.total_counter),
                ("oee.part_tag", self.oee.part_tag),
            ]
        refs += [(f"alarms[{i}].tag", a.tag) for i, a in enumerate(self.alarms)]
        if self.maintenance:
            refs += [(f"maintenance.anomaly_tags[{i}]", t) for i, t in enumerate(self.maintenance.anomaly_tags)]
            rul = self.maintenance.rul
            if rul is not None:
                refs += [(f"maintenance.rul.sensors.{s}", t) for s, t in rul.sensors.items()]
                refs += [("maintenance.rul.cycle_tag", rul.cycle_tag)]
        for where, ref in refs:
            if ref is not None and ref in waveforms:
                example = waveforms[ref].feature_tags(ref)[0]
                raise ValueError(f"{where} names waveform tag '{ref}': name one of its features, e.g. '{example}'")
            if ref is not None and ref not in known:
                close = difflib.get_close_matches(ref, sorted(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"{where} names unknown tag '{ref}'{hint}")
        return self


class ModbusProfile(_ProfileBase):
    protocol: Literal["modbus"]
    tags: list[ModbusTag] = Field(min_length=1)


class OpcuaProfile(_ProfileBase):
    protocol: Literal["opcua"]
    tags: list[OpcuaTag] = Field(min_length=1)


class MqttProfile(_ProfileBase):
    protocol: Literal["mqtt"]
    mqtt: MqttTopics
    tags: list[MqttTag] = Field(min_length=1)

    @cached_property
    def topics(self) -> set[str]:
        return {t.topic or self.mqtt.topic for t in self.tags}

    @model_validator(mode="after")
    def _check_device_segment(self) -> MqttProfile:
        index = self.mqtt.device_from_topic
        if index is None:
            return self
        for topic in sorted({t.topic or self.mqtt.topic for t in self.tags}):
            levels = topic.split("/")
            if "#" in levels[: index + 1] or index >= len(levels) or levels[index] != "+":
                got = levels[index] if index < len(levels) else "nothing"
                raise ValueError(
                    f"mqtt.device_from_topic: segment {index} of topic '{topic}' must be a '+' wildcard, "
                    f"got '{got}'"
                )
        return self


class SparkplugTag(TagBase):
    metric: str = Field(min_length=1, description="Sparkplug metric name, e.g. 'Sensors/Temperature'")


class SparkplugOptions(Strict):
    all_metrics: bool = Field(
        default=True, description="metrics without a [[tags]] entry become samples too, tag = metric name"
    )


class SparkplugProfile(_ProfileBase):
    protocol: Literal["sparkplug"]
    sparkplug: SparkplugOptions = SparkplugOptions()
    tags: list[SparkplugTag] = []

    @model_validator(mode="after")
    def _some_metrics(self) -> SparkplugProfile:
        if not self.tags and not self.sparkplug.all_metrics:
            raise ValueError("tags: give at least one tag, or sparkplug.all_metrics = true")
        metrics = [t.metric for t in self.tags]
        dupes = sorted({m for m in metrics if metrics.count(m) > 1})
        if dupes:
            raise ValueError(f"tags: metrics mapped twice: {', '.join(dupes)}")
        return self


Profile = ModbusProfile | OpcuaProfile | MqttProfile | SparkplugProfile
PROFILE_MODELS: dict[str, type[BaseModel]] = {
    "modbus": ModbusProfile, "opcua": OpcuaProfile, "mqtt": MqttProfile, "sparkplug": SparkplugProfile,
}


def shipped_profiles_dir() -> Path:
    return Path(str(resources.files("device_profiles")))


def available_profiles(search: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in [*search, shipped_profiles_dir()]:
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def resolve_profile(ref: str, base_dir: Path, search: list[Path]) -> Path | None:
    """A profile reference is a path (relative to the config file) or a profile name."""
    if ref.endswith(".toml") or "/" in ref:
        path = (base_dir / ref).resolve()
        return path if path.is_file() else None
    return available_profiles(search).get(ref)


def load_profile(path: Path) -> Profile:
    text, data = load_toml(path)
    protocol = data.get("protocol")
    if protocol not in PROFILE_MODELS:
        line = line_of(key_lines(text), ("protocol",))
        where = f"{path}:{line}" if line else str(path)
        got = "missing" if protocol is None else f"got {protocol!r}"
        names = ", ".join(f"'{name}'" for name in PROFILE_MODELS)
        raise ConfigError([f"{where}: protocol: must be one of {names} ({got})"])
    model = PROFILE_MODELS[protocol]
    try:
        return model.model_validate(data, context={"profile_dir": path.parent})  # type: ignore[return-value]
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, path, text, model)) from None
