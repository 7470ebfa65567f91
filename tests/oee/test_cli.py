"""``edge-agent analyze oee`` on small CSV files: one JSON object, bad rows by line number, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.profiles import shipped_profiles_dir

# cnc-1, window 06:00-07:00Z: breakdown 06:30-06:40 (600 s, reason 22): PPT 3600, run 3000, A = 0.833333333
# good 100 -> 300 (200), scrap 10 -> 12 (2): total 202, P = 12 * 202 / 3000 = 0.808, Q = 200 / 202
# OEE = 12 * 200 / 3600 = 0.666666667; reduced speed = 3000 - 2424 = 576; quality loss = 24
CSV = """\
ts,device,tag,value
2025-03-03T05:59:00+00:00,cnc-1,state,1
2025-03-03T05:59:00+00:00,cnc-1,stop_reason,0
2025-03-03T05:59:00+00:00,cnc-1,good_count,100
2025-03-03T05:59:00+00:00,cnc-1,scrap_count,10
2025-03-03T05:59:00+00:00,cnc-1,spindle_speed,8000.5
2025-03-03T05:59:00+00:00,cnc-2,state,3
2025-03-03T06:10:00+00:00,cnc-1,state
yesterday,cnc-1,state,1
2025-03-03T06:30:00+00:00,cnc-1,state,2
2025-03-03T06:30:00+00:00,cnc-1,stop_reason,22
2025-03-03T06:31:00+00:00,cnc-1,good_count,abc
2025-03-03T06:40:00Z,cnc-1,state,1
2025-03-03T06:40:00Z,cnc-1,stop_reason,0
2025-03-03T06:59:00+00:00,cnc-1,good_count,300
2025-03-03T06:59:00+00:00,cnc-1,scrap_count,12
2025-03-03T06:20:00+00:00,cnc-1,scrap_count,11
2025-03-03T06:59:30,cnc-1,good_count,301
"""
KEYS = [
    "device", "from", "to", "planned_time_s", "run_time_s", "downtime_s", "availability", "performance",
    "quality", "oee", "total_count", "good_count", "scrap_count", "losses_s", "mtbf_s", "mttr_s",
    "performance_raw", "nothing_produced",
]


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "samples.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    code = main(["analyze", "oee", *args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_prints_one_json_object_and_reports_bad_rows(capsys: pytest.CaptureFixture[str], csv_file: Path) -> None:
    code, out, err = run(capsys, "--samples", str(csv_file), "--profile", "cnc_vmc", "--device", "cnc-1",
                         "--from", "2025-03-03T06:00:00+00:00", "--to", "2025-03-03T07:00:00Z")
    assert code == 0
    assert err == [
        f"{csv_file}:8: expected 4 fields, got 3",
        f"{csv_file}:9: ts: not an ISO 8601 timestamp: 'yesterday'",
        f"{csv_file}:12: value: not a counter value: 'abc'",
        f"{csv_file}:17: ts 2025-03-03T06:20:00+00:00 is before the previous sample of cnc-1/scrap_count "
        "(2025-03-03T06:59:00+00:00); sort the file by time",
        f"{csv_file}:18: ts: '2025-03-03T06:59:30' has no UTC offset (write e.g. 2025-03-03T06:59:30+00:00 or "
        "2025-03-03T06:59:30Z)",
    ]
    result = json.loads(out)
    assert out.count("\n") == 1 and list(result) == KEYS
    assert result == {
        "device": "cnc-1", "from": "2025-03-03T06:00:00+00:00", "to": "2025-03-03T07:00:00+00:00",
        "planned_time_s": 3600.0, "run_time_s": 3000.0, "downtime_s": 600.0,
        "availability": 0.833333333, "performance": 0.808, "quality": 0.99009901, "oee": 0.666666667,
        "total_count": 202, "good_count": 200, "scrap_count": 2,
        "losses_s": {"breakdowns": 600.0, "setup_adjustments": 0.0, "small_stops": 0.0, "reduced_speed": 576.0,
                     "quality": 24.0},
        "mtbf_s": 3000.0, "mttr_s": 600.0, "performance_raw": 0.808, "nothing_produced": False,
    }


def test_detail_calendar_and_profile_path(capsys: pytest.CaptureFixture[str], csv_file: Path, tmp_path: Path) -> None:
    calendar = tmp_path / "shifts.toml"
    calendar.write_text(
        'timezone = "Europe/Berlin"\n[[shifts]]\nname = "early"\ndays = ["mon"]\nstart = "07:00"\nend = "07:45"\n',
        encoding="utf-8",
    )
    profile = str(shipped_profiles_dir() / "cnc_vmc.toml")
    # --from/--to without offset are Berlin time (UTC+1 in March): 07:00-08:00 = 06:00Z-07:00Z
    code, out, _ = run(capsys, "--samples", str(csv_file), "--profile", profile, "--device", "cnc-1",
                       "--calendar", str(calendar), "--from", "2025-03-03T07:00", "--to", "2025-03-03T08:00",
                       "--detail")
    assert code == 0
    result = json.loads(out)
    # planned 07:00-07:45 Berlin = 06:00Z-06:45Z: 2700 s, of which the breakdown 06:30-06:40 is 600 s
    assert (result["from"], result["planned_time_s"], result["downtime_s"]) == ("2025-03-03T07:00:00+01:00",
                                                                                2700.0, 600.0)
    assert result["off_calendar_s"] == 900.0
    assert [(s["kind"], s["reason"], s["duration_s"]) for s in result["stops"]] == [("breakdown", "22", 600.0)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "cnc_vmx"], "--profile: profile 'cnc_vmx' not found (did you mean 'cnc_vmc'?)"),
        (["--device", "cnc-9"], "no OEE samples of device 'cnc-9' (devices with OEE tags: cnc-1, cnc-2)"),
        ([], "samples of several devices (cnc-1, cnc-2): choose one with --device"),
        (["--device", "cnc-1", "--to", "2025-03-03T05:00:00Z"], "empty window"),
        (["--from", "soon"], "--from: not an ISO 8601 date and time: 'soon'"),
        (["--calendar", "missing.toml"], "missing.toml: file not found"),
        (["--profile", "vibration_sensor"], "profile 'vibration_sensor' has no [oee] table"),
    ],
)
def test_unusable_inputs_exit_2(
    capsys: pytest.CaptureFixture[str], csv_file: Path, args: list[str], message: str
) -> None:
    base = {"--samples": str(csv_file), "--profile": "cnc_vmc", "--from": "2025-03-03T06:00:00Z",
            "--to": "2025-03-03T07:00:00Z"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    code, out, err = run(capsys, *[part for pair in base.items() for part in pair])
    assert code == 2 and out == ""
    assert any(message in line for line in err), err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("", "empty file (expected the header ts,device,tag,value)"),
        ("time,device,tag,value\n", ":1: header 'time,device,tag,value' lacks ts"),
        ("ts,device,tag,value\n2025-03-03T05:59:00Z,cnc-1,spindle_speed,1\n", "no samples of the profile's OEE tags"),
    ],
)
def test_unusable_files_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "samples.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "--samples", str(path), "--profile", "cnc_vmc",
                         "--from", "2025-03-03T06:00:00Z", "--to", "2025-03-03T07:00:00Z")
    assert code == 2 and out == ""
    assert any(message in line for line in err), err


def test_console_entry_point(csv_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "analyze", "oee", "--samples", str(csv_file), "--profile", "cnc_vmc",
         "--device", "cnc-1", "--from", "2025-03-03T06:00:00Z", "--to", "2025-03-03T07:00:00Z"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["oee"] == 0.666666667
    assert f"{csv_file}:9:" in done.stderr


def test_docs_describe_every_output_key_and_the_public_api() -> None:
    import edge_agent.oee as package

    docs = (Path(__file__).parents[2] / "docs" / "oee.md").read_text(encoding="utf-8")
    assert "edge-agent analyze oee --samples FILE.csv --profile PROFILE --from ISO8601 --to ISO8601" in docs
    for key in [*KEYS, "breakdowns", "setup_adjustments", "small_stops", "reduced_speed", "--detail"]:
        assert key in docs, key
    for name in package.__all__:
        assert getattr(package, name) is not None
    for name in ("oee", "LiveOee", "load_calendar", "OeeOptions", "options_for_profile"):
        assert name in docs, name


def test_timestamp_memory_gives_the_same_instants_as_a_full_parse() -> None:
    from edge_agent.oee.offline import _Clock, parse_instant

    texts = [
        "2025-03-03T06:59:58+00:00", "2025-03-03T06:59:59+00:00", "2025-03-03T07:00:00+00:00",
        "2025-03-03T07:00:01.250+00:00", "2025-03-03T07:00:02.250+00:00", "2025-03-03T07:00:03Z",
        "2025-03-03 07:00:04+01:00", "2025-03-03 07:00:05+01:00", "2025-03-03T07:00:05-02:30",
        "2025-03-03T07+01:00", "2025-03-03T07+01:30", "20250303T070006Z", "2025-03-03T07:00:07+00:00",
    ]
    clock = _Clock()
    assert [clock.parse(t) for t in texts] == [parse_instant(t) for t in texts]
    for bad in ("2025-03-03T07:00:60+00:00", "2025-03-03T07:00:6x+00:00", "2025-03-03T07:00:08"):
        with pytest.raises(ValueError):
            clock.parse(bad)
