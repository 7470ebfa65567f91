"""Config and profile validation: every problem is one line naming file, line, key and what is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.config import load_config
from edge_agent.errors import ConfigError
from edge_agent.profiles import load_profile

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
gateway_id = "gw-1"
data_dir = "data"

[collector]
url = "http://127.0.0.1:8081"
api_key = "k"

[[devices]]
name = "cnc-1"
profile = "cnc_vmc"
[devices.connection]
host = "127.0.0.1"
port = 5020
unit_id = 1
"""


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_good_config_resolves_devices_and_profiles(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.gateway_id == "gw-1"
    assert config.data_dir == (tmp_path / "data").resolve()
    (device,) = config.devices
    assert device.protocol == "modbus"
    assert device.connection.port == 5020  # type: ignore[union-attr]
    assert device.profile.profile.name == "cnc_vmc"
    assert [t.name for t in device.profile.tags][:3] == ["state", "stop_reason", "good_count"]


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "examples" / "plant.toml")
    assert {d.protocol for d in config.devices} == {"modbus", "opcua", "mqtt"}


def test_shipped_profiles_are_valid() -> None:
    for path in sorted((REPO / "device_profiles").glob("*.toml")):
        assert load_profile(path).tags


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("port = 5020", "prot = 5020"))
    assert problems(path) == [f"{path}:13: devices[0].connection.prot: unknown key (did you mean 'port'?)"]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "gatway_id = 'x'\n" + GOOD)
    assert f"{path}:1: gatway_id: unknown key (did you mean 'gateway_id'?)" in problems(path)


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("port = 5020", 'port = "5020"'))
    assert problems(path) == [f"{path}:13: devices[0].connection.port: expected an integer, got '5020'"]


def test_wrong_type_in_collector(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('api_key = "k"', 'api_key = "k"\nbatch_size = "big"'))
    assert problems(path) == [f"{path}:7: collector.batch_size: expected an integer, got 'big'"]


def test_missing_profile(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('profile = "cnc_vmc"', 'profile = "cnc_vmx"'))
    assert problems(path) == [f"{path}:10: devices[0].profile: profile 'cnc_vmx' not found (did you mean 'cnc_vmc'?)"]


def test_bad_register_address(tmp_path: Path) -> None:
    profile = write(tmp_path, """\
        protocol = "modbus"
        [profile]
        name = "p"
        [[tags]]
        name = "a"
        type = "uint16"
        address = 0
        [[tags]]
        name = "b"
        type = "uint16"
        address = 70000
        """, "p.toml")
    with pytest.raises(ConfigError) as info:
        load_profile(profile)
    assert info.value.problems == [f"{profile}:11: tags[1].address: must be <= 65535, got 70000"]


def test_register_range_past_end(tmp_path: Path) -> None:
    profile = write(tmp_path, """\
        protocol = "modbus"
        [profile]
        name = "p"
        [[tags]]
        name = "a"
        type = "float64"
        address = 65534
        """, "p.toml")
    with pytest.raises(ConfigError) as info:
        load_profile(profile)
    assert info.value.problems == [
        f"{profile}:4: tags[0]: address 65534 with type 'float64' needs 4 registers and runs past 65535"
    ]


def test_profile_errors_reported_through_config(tmp_path: Path) -> None:
    write(tmp_path, """\
        protocol = "modbus"
        [profile]
        name = "p"
        [[tags]]
        name = "a"
        type = "unit16"
        address = 0
        """, "p.toml")
    path = write(tmp_path, GOOD.replace('profile = "cnc_vmc"', 'profile = "p.toml"'))
    (problem,) = problems(path)
    assert problem.startswith(f"{tmp_path / 'p.toml'}:6: tags[0].type: must be one of ")
    assert problem.endswith("got 'unit16' (did you mean 'uint16'?)")


def test_oee_signal_must_name_a_tag(tmp_path: Path) -> None:
    profile = write(tmp_path, """\
        protocol = "modbus"
        [profile]
        name = "p"
        [[tags]]
        name = "running"
        type = "bool"
        table = "coil"
        address = 0
        [oee]
        run_tag = "runing"
        ideal_cycle_time_s = 10
        """, "p.toml")
    with pytest.raises(ConfigError) as info:
        load_profile(profile)
    assert info.value.problems == [f"{profile}:10: oee.run_tag names unknown tag 'runing' (did you mean 'running'?)"]


def test_all_problems_reported_together(tmp_path: Path) -> None:
    text = GOOD.replace("port = 5020", "port = 99999").replace("unit_id = 1", "unit_id = 1\ncolour = 'red'")
    path = write(tmp_path, text)
    assert problems(path) == [
        f"{path}:13: devices[0].connection.port: must be <= 65535, got 99999",
        f"{path}:15: devices[0].connection.colour: unknown key",
    ]


def test_duplicate_device_names(tmp_path: Path) -> None:
    second = GOOD[GOOD.index("[[devices]]"):]
    path = write(tmp_path, GOOD + "\n" + second)
    assert problems(path) == [
        f"{path}:17: devices[1].name: duplicate device name 'cnc-1' (first used by devices[0])"
    ]


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id = \n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:1: invalid TOML: ")


def test_check_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    assert "device cnc-1: modbus, profile cnc_vmc" in out
    assert "good_count" in out
    bad = write(tmp_path, GOOD.replace("port = 5020", "prot = 5020"), "bad.toml")
    assert main(["check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"{bad}:13: devices[0].connection.prot: unknown key (did you mean 'port'?)"


def test_hash_password_command_output_is_a_valid_users_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-password\n"))
    assert main(["hash-password", "--name", "alice", "--role", "operator", "--stdin"]) == 0
    entry = capsys.readouterr().out
    path = write(tmp_path, GOOD.replace("[[devices]]", entry + "\n[[devices]]"))
    config = load_config(path)
    assert [(u.name, u.role) for u in config.users] == [("alice", "operator")]
