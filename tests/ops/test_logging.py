"""Log levels per component and per device: config, command line, reload."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.config import load_config
from edge_agent.errors import ConfigError
from edge_agent.ops import logs

REPO = Path(__file__).resolve().parents[2]

BASE = """\
gateway_id = "gw"
data_dir = "data"

[[devices]]
name = "cnc-1"
profile = "cnc_vmc"
[devices.connection]
host = "127.0.0.1"
port = 5020

[[devices]]
name = "cnc-2"
profile = "cnc_vmc"
[devices.connection]
host = "127.0.0.1"
port = 5020
unit_id = 2
"""


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = [*logs.COMPONENTS, *logs.LIBRARIES, "uvicorn.error"]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)
    logs._state.__init__()  # type: ignore[misc]


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(BASE + extra)
    return path


def test_config_levels_are_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
[logging]
level = "warning"
[logging.levels]
"edge_agent.connectors.modbus" = "debug"
[logging.devices]
"cnc-2" = "error"
"""))
    assert config.log_level == "warning"
    levels = logs.config_levels(config)
    assert levels.default == logging.WARNING
    assert levels.components == {"edge_agent.connectors.modbus": logging.DEBUG}
    assert levels.devices == {"cnc-2": logging.ERROR}


def test_top_level_log_level_still_works(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).log_level == "info"
    path = tmp_path / "old.toml"
    path.write_text('log_level = "debug"\n' + BASE)
    assert load_config(path).log_level == "debug"


@pytest.mark.parametrize(("extra", "expected"), [
    ('[logging.levels]\n"edge_agent.conectors.modbus" = "debug"\n',
     r"agent.toml:19: logging.levels: unknown component 'edge_agent.conectors.modbus' "
     r"\(did you mean 'edge_agent.connectors.modbus'\?\)"),
    ('[logging.levels]\n"edge_agent.buffer" = "verbose"\n',
     r"agent.toml:19: logging.levels.edge_agent.buffer: must be one of 'debug', 'info', 'warning' or 'error', "
     r"got 'verbose'"),
    ('[logging.devices]\n"cnc-3" = "debug"\n',
     r"agent.toml:19: logging.devices: no device named 'cnc-3' \(did you mean 'cnc-[12]'\?\)"),
    ('[logging]\nlevel = "trace"\n', r"agent.toml:20: logging.level: must be one of"),
    ('[logging]\nlevles = {}\n', r"agent.toml:20: logging.levles: unknown key \(did you mean 'levels'\?\)"),
])
def test_config_problems_are_precise(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "\n" + extra))
    assert len(info.value.problems) == 1
    assert re.search(expected, info.value.problems[0]), info.value.problems[0]


def test_library_children_may_have_a_level(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '\n[logging.levels]\n"asyncua.client" = "info"\n'))
    assert config.logging.levels == {"asyncua.client": "info"}


def test_command_line_options_parse() -> None:
    overrides, problems = logs.parse_options(
        ["debug", "edge_agent.buffer=warning", "device:cnc-1=error", "pymodbus.logging=INFO"])
    assert problems == []
    assert overrides.default == "debug"
    assert overrides.components == {"edge_agent.buffer": "warning", "pymodbus.logging": "info"}
    assert overrides.devices == {"cnc-1": "error"}
    _, problems = logs.parse_options(["loud", "edge_agnet=debug", "=info", "device:=info"])
    assert problems == [
        "--log-level loud: unknown level 'loud' (use debug, info, warning, error)",
        "--log-level edge_agnet=debug: unknown component 'edge_agnet' (did you mean 'edge_agent'?)",
        "--log-level =info: a component or device name is missing before '='",
        "--log-level device:=info: a device name is missing after 'device:'",
    ]


def test_run_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "")
    assert main(["run", "--config", str(path), "--log-level", "device:cnc-9=debug"]) == 2
    err = capsys.readouterr().err
    assert f"--log-level device:cnc-9=...: {path} has no device named 'cnc-9' (did you mean 'cnc-" in err
    assert main(["run", "--config", str(path), "--log-level", "edge_agent.bufer=debug"]) == 2
    assert "unknown component 'edge_agent.bufer' (did you mean 'edge_agent.buffer'?)" in capsys.readouterr().err


def emit_all() -> None:
    logging.getLogger("edge_agent.connectors.modbus").debug("%s: modbus detail", "cnc-1")
    logging.getLogger("edge_agent.connectors.modbus").debug("%s: modbus detail", "cnc-2")
    logging.getLogger("edge_agent").debug("%s: supervisor detail", "cnc-2")
    logging.getLogger("edge_agent").debug("gateway detail")
    logging.getLogger("edge_agent.buffer").info("buffer info")
    logging.getLogger("edge_agent.buffer").warning("buffer warning")
    logging.getLogger("cloud_sync.uploader").info("uploader info")


def lines(err: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in err.splitlines() if ": " in line]


def test_levels_per_component_and_device(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    levels = logs.resolve("info", {"edge_agent.connectors.modbus": "debug", "edge_agent.buffer": "warning"},
                          {"cnc-2": "debug"})
    logs.setup(levels)
    emit_all()
    assert lines(capsys.readouterr().err) == [
        "cnc-1: modbus detail", "cnc-2: modbus detail", "cnc-2: supervisor detail", "buffer warning",
        "uploader info",
    ]
    # a device's own level wins over its component's
    logs.apply(logs.resolve("info", {"edge_agent.connectors.modbus": "debug"}, {"cnc-1": "warning"}))
    emit_all()
    assert lines(capsys.readouterr().err) == [
        "cnc-2: modbus detail", "buffer info", "buffer warning", "uploader info",
    ]
    # nothing asks for debug: the loggers themselves refuse it (no record is even made)
    logs.apply(logs.resolve("warning"))
    assert not logging.getLogger("edge_agent.connectors.modbus").isEnabledFor(logging.INFO)
    emit_all()
    assert lines(capsys.readouterr().err) == ["buffer warning"]


def test_json_lines_name_the_device(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("info", "json")
    logging.getLogger("edge_agent").info("%s: connected (%s)", "cnc-1", "modbus")
    assert '"device":"cnc-1"' in capsys.readouterr().err


async def test_reload_applies_the_new_levels_and_keeps_the_options(
    restore_logging: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.supervisor import Agent

    path = write(tmp_path, '\n[logging.levels]\n"edge_agent.buffer" = "warning"\n')
    overrides, _ = logs.parse_options(["cloud_sync.uploader=error"])
    config = load_config(path)
    logs.setup(logs.config_levels(config, overrides), "text", overrides)
    emit_all()
    assert lines(capsys.readouterr().err) == ["buffer warning"]
    path.write_text(BASE + '\n[logging.levels]\n"edge_agent.buffer" = "info"\n"cloud_sync" = "info"\n'
                           '[logging.devices]\n"cnc-1" = "debug"\n')
    agent = Agent(config)
    assert await agent.reload() == []
    assert "config reloaded" in capsys.readouterr().err
    emit_all()
    err = capsys.readouterr().err
    assert lines(err)[:3] == ["cnc-1: modbus detail", "buffer info", "buffer warning"]
    assert "uploader info" not in err  # --log-level cloud_sync.uploader=error still wins
    current = logs.current()
    assert current is not None and current.devices == {"cnc-1": logging.DEBUG}


def test_every_logger_of_the_code_is_a_known_component() -> None:
    used: set[str] = set()
    for package in ("edge_agent", "cloud_sync", "simulators"):
        for source in (REPO / package).rglob("*.py"):
            used.update(re.findall(r'getLogger\("([^"]+)"\)', source.read_text()))
    unknown = sorted(name for name in used if logs.component_problem(name) is not None)
    assert unknown == [], f"add these loggers to edge_agent.ops.logs.COMPONENTS: {unknown}"
