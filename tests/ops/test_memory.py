"""The allocator settings the agent makes at start (edge_agent/ops/memory.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.ops import memory


def test_an_operator_setting_in_the_environment_wins() -> None:
    assert memory.tune_allocator({"MALLOC_MMAP_THRESHOLD_": "131072"}) is False
    assert memory.tune_allocator({"MALLOC_TRIM_THRESHOLD_": "0"}) is False


def test_nothing_is_changed_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_mallopt", lambda: None)
    assert memory.tune_allocator({}) is False


PROBE = """
import sys
from pathlib import Path
from edge_agent.ops.memory import tune_allocator
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
if sys.argv[1] == 'tuned' and not tune_allocator({}):
    print('skip'); sys.exit()
big = bytearray(4 * 1024 * 1024); del big   # glibc's own threshold follows the largest block freed: 4 MiB
before = rss()
keep = []
for i in range(40):                          # 40 MiB of blocks, each freed after use, small live objects between
    block = bytearray(1024 * 1024)
    keep.append(bytes(200))
    del block
blocks = [bytearray(256 * 1024) for _ in range(40)]
for b in blocks: keep.append(bytes(200))
del blocks
print(rss() - before)
"""


def grown_kb(mode: str) -> int | None:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return None if out.stdout.strip() == "skip" else int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_freed_blocks_go_back_to_the_system() -> None:
    tuned = grown_kb("tuned")
    if tuned is None:
        pytest.skip("not glibc")
    untuned = grown_kb("default")
    assert untuned is not None
    assert tuned < 2048, tuned  # kB: the freed blocks went back
    assert untuned > tuned + 4096, (untuned, tuned)  # glibc's default keeps them (10 MB here)


def test_usage_reads_the_resident_sizes(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  153600 kB\nVmRSS:\t  102400 kB\nThreads:\t4\n")
    got = memory.usage(status)
    assert (got["rss_mb"], got["peak_rss_mb"]) == (100.0, 150.0)
    missing = memory.usage(tmp_path / "absent")
    assert missing["rss_mb"] is None and missing["peak_rss_mb"] is None


@pytest.mark.skipif(memory._MALLINFO2 is None, reason="glibc 2.33 or later")
def test_usage_follows_what_the_allocator_holds() -> None:
    before = memory.usage()
    blocks = [bytearray(1024) for _ in range(20_000)]  # 20 MB in blocks the allocator serves from its arenas
    during = memory.usage()
    assert during["allocator_in_use_mb"] is not None and before["allocator_in_use_mb"] is not None
    assert during["allocator_in_use_mb"] - before["allocator_in_use_mb"] >= 15
    assert during["allocator_held_mb"] is not None and during["allocator_held_mb"] >= during["allocator_in_use_mb"]
    del blocks
