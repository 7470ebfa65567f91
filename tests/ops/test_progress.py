"""Progress bars: drawn on stderr when it is a terminal (a pty here), nothing at all when it is piped."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_agent.maintenance.rul import DEFAULT_MODEL, ModelCard
from edge_agent.maintenance.rul_data import CMAPSS_COLUMNS
from edge_agent.ops.progress import Progress, iterate, watch_file

REPO = Path(__file__).resolve().parents[2]


CSV = """\
ts,device,tag,value
2025-03-03T05:59:00+00:00,cnc-1,state,1
2025-03-03T05:59:00+00:00,cnc-1,good_count,100
2025-03-03T05:59:00+00:00,cnc-1,scrap_count,10
2025-03-03T06:30:00+00:00,cnc-1,state,2
2025-03-03T06:30:00+00:00,cnc-1,stop_reason,22
yesterday,cnc-1,state,1
2025-03-03T06:40:00Z,cnc-1,state,1
2025-03-03T06:59:00+00:00,cnc-1,good_count,300
2025-03-03T06:59:00+00:00,cnc-1,scrap_count,12
"""


def cmapss_file(path: Path, units: dict[int, int]) -> None:
    """A C-MAPSS text file: ``units`` {unit: cycles} near the shipped model's operating point, drifting."""
    card = ModelCard.read(DEFAULT_MODEL.with_suffix(".json"))
    base = {name: 1.0 for name in CMAPSS_COLUMNS} | dict(zip(card.sensors, card.offset.tolist(), strict=True))
    lines = []
    for unit, cycles in units.items():
        for cycle in range(1, cycles + 1):
            values = [base[name] * (1 + 0.001 * cycle) for name in CMAPSS_COLUMNS]
            lines.append(" ".join(f"{v:.6g}" for v in [unit, cycle, *values]) + "  \n")
    path.write_text("".join(lines))


def nab_file(tmp_path: Path, rows: int = 3000) -> Path:
    path = tmp_path / "series.csv"
    lines = ["timestamp,value"]
    lines += [f"2026-01-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},{np.sin(i / 50):.4f}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_bar_draws_in_place_and_ends_its_line() -> None:
    out = io.StringIO()
    with Progress("copying", 200, unit="rows", stream=out, enabled=True) as bar:
        bar.update(50)
    text = out.getvalue()
    assert text.startswith("\rcopying [") and "  0%" in text
    assert text.endswith("\n") and "100%  200 rows / 200 rows" in text
    assert text.count("\n") == 1


def test_nothing_is_written_to_a_pipe_or_file() -> None:
    out = io.StringIO()  # not a terminal
    with Progress("copying", 10, stream=out) as bar:
        bar.update(5)
    assert list(iterate(range(1000), "scoring", 1000, stream=out)) == list(range(1000))
    assert out.getvalue() == ""


def test_iterate_counts_what_was_consumed() -> None:
    out = io.StringIO()
    assert sum(iterate(range(1000), "scoring", 1000, unit="rows", stream=out, enabled=True)) == sum(range(1000))
    assert "100%  1,000 rows / 1,000 rows" in out.getvalue()


def test_watch_file_follows_the_read_position(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 100_000)
    out = io.StringIO()
    with watch_file(path, "reading", stream=out, enabled=True) as bar, path.open("rb", buffering=0) as handle:
        handle.read(40_000)
        deadline = time.monotonic() + 5
        while bar.done != 40_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bar.done == 40_000  # what the kernel says this process has read of the file
        handle.read()
    assert "40.0 kB / 100.0 kB" in out.getvalue() or " 40%" in out.getvalue()
    assert "100%  100.0 kB / 100.0 kB" in out.getvalue()


def run_on_pty(args: list[str]) -> tuple[int, bytes, bytes]:
    """Run the CLI with stderr on a terminal (the pty's slave side) and stdout on a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    seen = bytearray()
    assert proc.stdout is not None
    out = bytearray()
    deadline = time.monotonic() + 60
    streams = [master, proc.stdout.fileno()]
    while streams and time.monotonic() < deadline:
        ready, _, _ = select.select(streams, [], [], 0.5)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the pty reports EIO once the child closed it
                chunk = b""
            if not chunk:
                streams.remove(fd)
            elif fd == master:
                seen += chunk
            else:
                out += chunk
    code = proc.wait(timeout=10)
    os.close(master)
    proc.stdout.close()
    return code, bytes(out), bytes(seen)


def test_analyze_anomaly_shows_reading_and_scoring_on_a_terminal_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.cli import main

    args = ["analyze", "anomaly", "--input", str(nab_file(tmp_path))]
    code, out, err = run_on_pty(args)
    assert code == 0, err
    assert out.count(b"\n") == 3001  # the CSV on stdout is untouched
    assert b"\rreading series.csv [" in err and b"\rscoring [" in err
    assert b"100%  3,000 rows / 3,000 rows" in err
    assert main(args) == 0  # stderr captured: not a terminal
    piped = capsys.readouterr()
    assert piped.out.encode() == out
    assert piped.err == ""


def main_on_pty(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> tuple[int, str]:
    """Run the CLI in this process with sys.stderr on a pty; what the terminal received."""
    from edge_agent.cli import main

    master, slave = pty.openpty()
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with os.fdopen(slave, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        code = main(args)
        terminal.flush()
        monkeypatch.undo()
    reader.join(timeout=5)
    os.close(master)
    return code, received.decode()


def test_analyze_oee_and_rul_show_progress_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.cli import main

    samples = tmp_path / "samples.csv"
    samples.write_text(CSV)
    oee = ["analyze", "oee", "--samples", str(samples), "--profile", "cnc_vmc", "--device", "cnc-1",
           "--from", "2025-03-03T06:00:00+00:00", "--to", "2025-03-03T07:00:00Z"]
    code, err = main_on_pty(monkeypatch, oee)
    assert code == 0, err
    assert "\rreading samples.csv [" in err and "100%" in err
    out = capsys.readouterr().out
    assert main(oee) == 0  # stderr captured: not a terminal
    piped = capsys.readouterr()
    assert piped.out == out
    assert "reading" not in piped.err and "\r" not in piped.err  # only the bad-row messages

    engines = tmp_path / "engines.txt"
    cmapss_file(engines, {1: 60, 2: 45})
    code, err = main_on_pty(monkeypatch, ["analyze", "rul", "--input", str(engines)])
    assert code == 0, err
    assert "\rreading engines.txt [" in err and "\rpredicting [" in err and "2 units / 2 units" in err
    out = capsys.readouterr().out
    assert out.count("\n") == 2
    assert main(["analyze", "rul", "--input", str(engines)]) == 0
    piped = capsys.readouterr()
    assert (piped.out, piped.err) == (out, "")


@pytest.mark.parametrize("value", ["info", "edge_agent.buffer=debug"])
def test_log_level_option_accepts_levels_and_components(value: str) -> None:
    from edge_agent.cli import build_parser

    args = build_parser().parse_args(["run", "--config", "x.toml", "--log-level", value, "--log-level", "debug"])
    assert args.log_level == [value, "debug"]
