"""The agent's configuration: one TOML file, validated once into frozen objects.

Every problem becomes one line ``FILE:LINE: KEY: what is wrong``; all problems
of a file are reported together. Profiles named by devices are loaded and
validated here too, so a config that passes ``edge-agent check`` runs.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from edge_agent import secrets
from edge_agent.alarms.model import AlarmSettings
from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.connectors.sparkplug.config import SparkplugConnection
from edge_agent.edge_node.config import EdgeNodeSettings
from edge_agent.errors import ConfigError
from edge_agent.oee.calendar import ALWAYS, Calendar, load_calendar
from edge_agent.ops.logs import component_problem
from edge_agent.profiles import Profile, Strict, available_profiles, load_profile, resolve_profile
from edge_agent.status.settings import StatusSettings, UserEntry
from edge_agent.twin.settings import TwinSettings
from edge_agent.validation import dotted, format_errors, key_lines, line_of, load_toml

CONNECTION_MODELS: dict[str, type[BaseModel]] = {
    "modbus": ModbusConnection,
    "opcua": OpcuaConnection,
    "mqtt": MqttConnection,
    "sparkplug": SparkplugConnection,
}
Connection = ModbusConnection | OpcuaConnection | MqttConnection | SparkplugConnection


class HttpSettings(Strict):
    listen: str = Field(default="127.0.0.1:8080", pattern=r"^[^\s:]+:\d{1,5}$")


class BufferSettings(Strict):
    max_rows: int = Field(default=5_000_000, ge=100)
    max_bytes: int = Field(default=1024**3, ge=64 * 1024, description="cap of the buffer file's pages in use")
    on_full: Literal["drop_oldest", "drop_newest"] = "drop_oldest"
    synchronous: Literal["normal", "full"] = "normal"
    retention_s: float = Field(default=3600.0, ge=0, description="how long synced rows are kept")
    queue_size: int = Field(default=20_000, ge=10, description="samples waiting for the writer")
    write_batch: int = Field(default=5_000, ge=1)
    integrity_check: Literal["quick", "full", "off"] = "quick"
    overflow_event_interval_s: float = Field(
        default=60.0, ge=0, description="at most one buffer_overflow event per this many seconds"
    )


class CollectorSettings(Strict):
    url: str = Field(pattern=r"^https?://")
    api_key: str = ""
    batch_size: int = Field(default=5_000, ge=1, le=100_000)
    batch_max_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="JSON bytes per batch before gzip"
    )
    compression: Literal["zstd", "gzip"] = Field(
        default="zstd", description="zstd (level 1) or gzip (gzip_level); falls back to gzip when the collector "
        "answers 415"
    )
    gzip_level: int = Field(default=1, ge=1, le=9, description="1: fastest; 6: about 20 % fewer bytes")
    interval_s: float = Field(default=2.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    verify_tls: bool = True
    ca_file: str | None = Field(default=None, description="PEM bundle to verify the collector with")
    client_cert: str | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    client_key: str | None = Field(default=None, description="PEM key of client_cert, if not in that file")
    http2: bool = False

    @model_validator(mode="after")
    def _tls_and_http2(self) -> CollectorSettings:
        if self.client_key and not self.client_cert:
            raise ValueError("client_key needs client_cert")
        if self.http2 and importlib.util.find_spec("h2") is None:
            raise ValueError("http2 = true needs the 'h2' package (pip install 'httpx[http2]')")
        return self


RollupKind = Literal["hour", "shift", "day"]
ROLLUP_KINDS: tuple[RollupKind, ...] = ("hour", "shift", "day")


class BehaviourSettings(Strict):
    """The ``[behaviour]`` table: machine events, OEE rollups, sessions and behaviour profiles (docs/events.md).

    ```toml
    [behaviour]
    rollups = ["hour", "shift", "day"]   # "shift" needs a calendar
    rollup_delay_s = 300                 # roll a period up 5 minutes after it ended
    part_count_interval_s = 60           # at most one part_count event per machine per minute
    ```
    """

    enabled: bool = Field(default=True, description="false: no machine events, sessions or rollups")
    rollups: list[RollupKind] = Field(
        default_factory=lambda: list(ROLLUP_KINDS),
        description="periods rolled up into oee_rollup, machine_profile and alarm_kpis events",
    )
    oee_rollups: bool = Field(default=True, description="an oee_rollup event per OEE device and period")
    tick_interval_s: float = Field(
        default=30.0, ge=0.1, le=3600, description="how often sessions are timed out and ended periods rolled up"
    )
    rollup_delay_s: float = Field(
        default=300.0, ge=0, le=86_400,
        description="a period is rolled up this long after it ended: keep it above micro_stop_s and the stop "
        "reason look-ahead (300 s), so stops open at its end are classified and late reasons are in",
    )
    part_count_interval_s: float = Field(
        default=60.0, ge=0, le=3600, description="at most one part_count event per machine per this many seconds; "
        "0: one per counter increment"
    )
    max_events: int = Field(
        default=200_000, ge=1000, description="recent events kept for the rollups (the oldest go first)"
    )

    @model_validator(mode="after")
    def _rollups_once(self) -> BehaviourSettings:
        twice = sorted({r for r in self.rollups if self.rollups.count(r) > 1})
        if twice:
            raise ValueError(f"rollups: {', '.join(twice)} given twice")
        return self


class Location(Strict):
    site: str = ""
    area: str = ""
    line: str = ""


class DeviceEntry(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    profile: str
    enabled: bool = True
    location: Location = Location()
    connection: dict[str, Any]


LogLevel = Literal["debug", "info", "warning", "error"]


class LoggingSettings(Strict):
    level: LogLevel | None = Field(default=None, description="default level (replaces the top-level log_level)")
    levels: dict[str, LogLevel] = Field(
        default={}, description='level per component (a logger name, with its children), e.g. '
        '"edge_agent.connectors.modbus" = "debug"'
    )
    devices: dict[str, LogLevel] = Field(
        default={}, description='level of the messages about one device, e.g. "cnc-1" = "debug"'
    )

    @field_validator("levels")
    @classmethod
    def _known_components(cls, value: dict[str, str]) -> dict[str, str]:
        problems = [p for p in map(component_problem, value) if p is not None]
        if problems:
            raise ValueError("; ".join(problems))
        return value


class AgentFile(Strict):
    gateway_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    data_dir: str = "data"
    profile_dirs: list[str] = []
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    logging: LoggingSettings = LoggingSettings()
    http: HttpSettings = HttpSettings()
    buffer: BufferSettings = BufferSettings()
    collector: CollectorSettings | None = None
    calendar: str | None = Field(default=None, description="shift calendar file (TOML) for OEE; default 24/7")
    status: StatusSettings = StatusSettings()
    users: list[UserEntry] = []
    twin: TwinSettings = TwinSettings()
    alarms: AlarmSettings = AlarmSettings()
    behaviour: BehaviourSettings = BehaviourSettings()
    sparkplug_node: EdgeNodeSettings | None = None
    devices: list[DeviceEntry] = []


@dataclass(frozen=True)
class Device:
    name: str
    profile: Profile
    profile_path: Path
    connection: Connection
    location: Location

    @property
    def protocol(self) -> str:
        return self.profile.protocol


@dataclass(frozen=True)
class AgentConfig:
    path: Path
    gateway_id: str
    data_dir: Path
    log_level: str
    http: HttpSettings
    buffer: BufferSettings
    collector: CollectorSettings | None
    devices: tuple[Device, ...]
    calendar: Calendar = ALWAYS
    warnings: tuple[str, ...] = ()
    status: StatusSettings = field(default_factory=StatusSettings)
    users: tuple[UserEntry, ...] = ()
    twin: TwinSettings = field(default_factory=TwinSettings)
    alarms: AlarmSettings = field(default_factory=AlarmSettings)
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    sparkplug_node: EdgeNodeSettings | None = None

    @property
    def listen(self) -> tuple[str, int]:
        host, port = self.http.listen.rsplit(":", 1)
        return host, int(port)


def load_config(path: Path | str) -> AgentConfig:
    path = Path(path)
    text, data = load_toml(path)
    try:
        raw = AgentFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, path, text, AgentFile)) from None

    lines = key_lines(text)
    base = path.resolve().parent
    search = [(base / d).resolve() for d in raw.profile_dirs]
    problems: list[str] = []
    devices: list[Device] = []
    literal_secrets: list[str] = []
    seen: dict[str, int] = {}
    profiles: dict[Path, Profile | None] = {}  # devices of one profile share it (None: it has problems)

    def where(loc: tuple[str | int, ...]) -> str:
        line = line_of(lines, loc)
        return f"{path}:{line}" if line else str(path)

    for i, entry in enumerate(raw.devices):
        if entry.name in seen:
            loc = ("devices", i, "name")
            problems.append(
                f"{where(loc)}: {dotted(loc)}: duplicate device name '{entry.name}' "
                f"(first used by devices[{seen[entry.name]}])"
            )
            continue
        seen[entry.name] = i
        profile_path = resolve_profile(entry.profile, base, search)
        if profile_path is None:
            loc = ("devices", i, "profile")
            names = sorted(available_profiles(search))
            close = difflib.get_close_matches(entry.profile, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (available: {', '.join(names)})"
            problems.append(f"{where(loc)}: {dotted(loc)}: profile '{entry.profile}' not found{hint}")
            continue
        if profile_path not in profiles:
            try:
                profiles[profile_path] = load_profile(profile_path)
            except ConfigError as exc:
                profiles[profile_path] = None
                problems.extend(exc.problems)  # once, not once per device that uses the profile
        profile = profiles[profile_path]
        if profile is None:
            continue
        model = CONNECTION_MODELS[profile.protocol]
        try:
            connection = model.model_validate(entry.connection)
        except ValidationError as exc:
            problems.extend(format_errors(exc, path, text, model, prefix=("devices", i, "connection")))
            continue
        localise = getattr(connection, "localise", None)  # file names in the connection, e.g. certificates
        if localise is not None:
            connection, trouble = localise(base, (base / raw.data_dir).resolve())
            conn_loc: tuple[str | int, ...] = ("devices", i, "connection")
            problems.extend(f"{where(conn_loc)}: {dotted(conn_loc)}.{t}" for t in trouble)
        password = getattr(connection, "password", None)
        if isinstance(password, str):
            secret_loc: tuple[str | int, ...] = ("devices", i, "connection", "password")
            try:
                connection = connection.model_copy(update={"password": secrets.resolve(password, base)})
            except secrets.SecretError as exc:
                problems.append(f"{where(secret_loc)}: {dotted(secret_loc)}: {exc}")
                continue
            if not secrets.is_reference(password):
                literal_secrets.append(dotted(secret_loc))
        devices.append(Device(entry.name, profile, profile_path, connection, entry.location))  # type: ignore[arg-type]

    for name in raw.logging.devices:
        if name not in seen:
            close = difflib.get_close_matches(name, list(seen), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (devices: {', '.join(seen) or 'none'})"
            problems.append(f"{where(('logging', 'devices'))}: logging.devices: no device named '{name}'{hint}")

    calendar = ALWAYS
    if raw.calendar is not None:
        calendar_path = (base / raw.calendar).resolve()
        if not calendar_path.is_file():
            problems.append(
                f"{where(('calendar',))}: calendar: file '{raw.calendar}' not found (looked for {calendar_path})"
            )
        else:
            try:
                calendar = load_calendar(calendar_path)
            except ConfigError as exc:
                problems.extend(exc.problems)

    collector = raw.collector
    if collector is not None and collector.api_key:
        try:
            collector = collector.model_copy(update={"api_key": secrets.resolve(collector.api_key, base)})
        except secrets.SecretError as exc:
            problems.append(f"{where(('collector', 'api_key'))}: collector.api_key: {exc}")
        if not secrets.is_reference(raw.collector.api_key if raw.collector else ""):
            literal_secrets.append("collector.api_key")

    sparkplug_node = raw.sparkplug_node
    if sparkplug_node is not None and sparkplug_node.password is not None:
        try:
            sparkplug_node = sparkplug_node.model_copy(
                update={"password": secrets.resolve(sparkplug_node.password, base)})
        except secrets.SecretError as exc:
            problems.append(f"{where(('sparkplug_node', 'password'))}: sparkplug_node.password: {exc}")
        if not secrets.is_reference((raw.sparkplug_node.password if raw.sparkplug_node else None) or ""):
            literal_secrets.append("sparkplug_node.password")

    if problems:
        raise ConfigError(problems)
    warnings = []
    if literal_secrets and secrets.world_readable(path):
        warnings.append(
            f"{path}: {', '.join(literal_secrets)} written in a file other users can read: use "
            "'env:NAME', 'file:PATH' or 'credential:NAME' (see docs/operations.md), or chmod o-r the file"
        )
    return AgentConfig(
        path=path,
        gateway_id=raw.gateway_id,
        data_dir=(base / raw.data_dir).resolve(),
        log_level=raw.logging.level or raw.log_level,
        http=raw.http,
        buffer=raw.buffer,
        collector=collector,
        devices=tuple(devices),
        warnings=tuple(warnings),
        calendar=calendar,
        status=raw.status,
        users=tuple(raw.users),
        twin=raw.twin,
        alarms=raw.alarms,
        sparkplug_node=sparkplug_node,
        behaviour=raw.behaviour,
        logging=raw.logging,
    )
