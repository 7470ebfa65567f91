"""Log output and log levels.

Output: human-readable lines by default, JSON lines with ``--log-format json``.

Levels: one default level, plus levels per component (a logger name such as
``edge_agent.connectors.modbus``, which covers its children) and per device (the
messages about one device, whichever component writes them). They come from the
config's ``[logging]`` table and from ``--log-level`` options; an option wins over
the config, also after a reload (:func:`reconfigure`).

Loggers are set to the lowest level anything below them needs, so a debug call
costs nothing unless some level asks for debug; one filter on the handler then
applies the exact rule: the device's level if the record is about a device that
has one, else the level of the longest component name that matches, else the
default.
"""

from __future__ import annotations

import difflib
import logging
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LEVELS = ("debug", "info", "warning", "error")

# Every logger the agent and the collector write to (a test checks the code uses no other), and the
# libraries whose loggers may be given a level too (with any of their children).
COMPONENTS: tuple[str, ...] = (
    "edge_agent",
    "edge_agent.buffer",
    "edge_agent.connectors",
    "edge_agent.connectors.modbus",
    "edge_agent.connectors.mqtt",
    "edge_agent.connectors.opcua",
    "edge_agent.connectors.sparkplug",
    "edge_agent.demo",
    "edge_agent.edge_node",
    "edge_agent.maintenance",
    "edge_agent.ops",
    "edge_agent.status",
    "cloud_sync",
    "cloud_sync.uploader",
    "cloud_sync.analytics",
    "cloud_sync.collector",
    "cloud_sync.collector.app",
    "cloud_sync.collector.store",
    "simulators",
    "simulators.broker",
    "simulators.mes",
    "simulators.modbus",
    "simulators.mqtt",
    "simulators.opcua",
    "simulators.operators",
    "simulators.runner",
)
LIBRARIES: tuple[str, ...] = ("aiomqtt", "apscheduler", "asyncua", "httpx", "pymodbus", "uvicorn")
# the connectors report device failures once through their sink; these libraries would log each retry
_QUIET = ("asyncua", "pymodbus")
_NOISY = ("apscheduler", "httpx", "uvicorn.error")


def level_number(name: str) -> int:
    return int(getattr(logging, name.upper()))


def component_problem(name: str) -> str | None:
    """Why ``name`` cannot be given a level (None if it can)."""
    if name in COMPONENTS or any(name == lib or name.startswith(lib + ".") for lib in LIBRARIES):
        return None
    close = difflib.get_close_matches(name, [*COMPONENTS, *LIBRARIES], n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(COMPONENTS)}, or a library: " \
        f"{', '.join(LIBRARIES)})"
    return f"unknown component '{name}'{hint}"


@dataclass(frozen=True)
class LogLevels:
    """The resolved rule: a default level, levels per component and per device (logging's numbers)."""

    default: int = logging.INFO
    components: Mapping[str, int] = field(default_factory=dict)
    devices: Mapping[str, int] = field(default_factory=dict)

    def for_component(self, name: str) -> int:
        best, level = -1, self.default
        for component, value in self.components.items():
            if (name == component or name.startswith(component + ".")) and len(component) > best:
                best, level = len(component), value
        return level

    def threshold(self, record: logging.LogRecord) -> int:
        device = device_of(record)
        if device is not None and device in self.devices:
            return self.devices[device]
        return self.for_component(record.name)


def device_of(record: logging.LogRecord) -> str | None:
    """The device a record is about: ``extra={"device": ...}``, or the first argument of a
    ``"%s: ..."`` message (the way the agent writes every message about a device)."""
    device = getattr(record, "device", None)
    if isinstance(device, str):
        return device
    args = record.args
    if isinstance(record.msg, str) and record.msg.startswith("%s:") and isinstance(args, tuple) and args \
            and isinstance(args[0], str):
        return args[0]
    return None


@dataclass(frozen=True)
class Overrides:
    """What ``--log-level`` options said; they win over the config file."""

    default: str | None = None
    components: Mapping[str, str] = field(default_factory=dict)
    devices: Mapping[str, str] = field(default_factory=dict)


DEVICE_PREFIX = "device:"


def parse_options(values: Iterable[str]) -> tuple[Overrides, list[str]]:
    """``--log-level`` values: ``LEVEL``, ``COMPONENT=LEVEL`` or ``device:NAME=LEVEL``; problems listed."""
    default: str | None = None
    components: dict[str, str] = {}
    devices: dict[str, str] = {}
    problems: list[str] = []
    for value in values:
        target, _, level = value.rpartition("=")
        level = level.strip().lower()
        if level not in LEVELS:
            problems.append(f"--log-level {value}: unknown level '{level}' (use {', '.join(LEVELS)})")
            continue
        target = target.strip()
        if not target and "=" in value:
            problems.append(f"--log-level {value}: a component or device name is missing before '='")
        elif not target:
            default = level
        elif target.startswith(DEVICE_PREFIX):
            name = target[len(DEVICE_PREFIX):]
            if not name:
                problems.append(f"--log-level {value}: a device name is missing after 'device:'")
            else:
                devices[name] = level
        elif (problem := component_problem(target)) is not None:
            problems.append(f"--log-level {value}: {problem}")
        else:
            components[target] = level
    return Overrides(default, components, devices), problems


def resolve(
    default: str,
    components: Mapping[str, str] | None = None,
    devices: Mapping[str, str] | None = None,
    overrides: Overrides | None = None,
) -> LogLevels:
    """The levels of a config (default and tables) with the command line's overrides on top."""
    over = overrides or Overrides()
    merged_components = {**(components or {}), **over.components}
    merged_devices = {**(devices or {}), **over.devices}
    return LogLevels(
        default=level_number(over.default or default),
        components={k: level_number(v) for k, v in merged_components.items()},
        devices={k: level_number(v) for k, v in merged_devices.items()},
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO 8601), level, logger, message (and exc when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        device = device_of(record)
        if device is not None:
            doc["device"] = device
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


class LevelFilter(logging.Filter):
    """Applies :class:`LogLevels` to every record reaching the handler."""

    def __init__(self, levels: LogLevels) -> None:
        super().__init__()
        self.levels = levels

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.levels.threshold(record)


class _State:
    """What :func:`setup` installed, for :func:`apply` and :func:`reconfigure`."""

    def __init__(self) -> None:
        self.filter: LevelFilter | None = None
        self.overrides = Overrides()
        self.touched: set[str] = set()


_state = _State()


def setup(
    level: str | LogLevels, fmt: str = "text", overrides: Overrides | None = None
) -> None:
    """Send log records to stderr in ``fmt`` and apply ``level`` (a level name or resolved levels).

    ``overrides`` (from the command line) are remembered: :func:`reconfigure` keeps them on top.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    levels = level if isinstance(level, LogLevels) else resolve(level, overrides=overrides)
    _state.filter = LevelFilter(levels)
    _state.overrides = overrides or Overrides()
    handler.addFilter(_state.filter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    apply(levels)


def apply(levels: LogLevels) -> None:
    """Set the loggers' levels (and the handler's rule) to ``levels``."""
    root = logging.getLogger()
    for name in _state.touched:  # levels of a previous configuration that may be gone now
        logging.getLogger(name).setLevel(logging.NOTSET)
    touched: set[str] = set()
    root.setLevel(levels.default)
    quiet = logging.DEBUG if levels.default <= logging.DEBUG else logging.CRITICAL
    for library in _QUIET:
        logging.getLogger(library).setLevel(quiet)
        touched.add(library)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, levels.default))
        touched.add(noisy)
    lowest_device = min(levels.devices.values(), default=logging.CRITICAL)
    for name, value in levels.components.items():
        logger_level = min(value, lowest_device) if name.startswith(("edge_agent", "cloud_sync")) else value
        logging.getLogger(name).setLevel(logger_level)
        touched.add(name)
    if lowest_device < levels.default:  # messages about devices come from the agent's loggers
        for name in ("edge_agent", "cloud_sync"):
            if name not in levels.components:
                logging.getLogger(name).setLevel(lowest_device)
                touched.add(name)
    _state.touched = touched
    if _state.filter is not None:
        _state.filter.levels = levels


def config_levels(config: AgentConfig, overrides: Overrides | None = None) -> LogLevels:
    """The levels a config asks for (its ``log_level`` and ``[logging]`` table), ``overrides`` on top."""
    return resolve(config.log_level, config.logging.levels, config.logging.devices, overrides)


def reconfigure(config: AgentConfig) -> None:
    """Apply a reloaded config's levels, the command line's overrides still on top."""
    if _state.filter is None:  # logging was not set up by us (a library user, a test): leave it alone
        return
    apply(config_levels(config, _state.overrides))


def current() -> LogLevels | None:
    """The levels in force (None before :func:`setup`)."""
    return None if _state.filter is None else _state.filter.levels
