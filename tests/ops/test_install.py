"""The install script lays out units and a valid default config, and uninstall keeps data unless asked."""

from __future__ import annotations

import subprocess
from pathlib import Path

from edge_agent.config import load_config

SCRIPT = Path(__file__).resolve().parents[2] / "systemd" / "install.sh"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_install_then_uninstall(tmp_path: Path) -> None:
    out = run("install", "--destdir", str(tmp_path), "--no-venv", "--no-systemctl")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "etc/systemd/system/edge-agent.service").is_file()
    assert (tmp_path / "etc/systemd/system/edge-collector.service").is_file()
    config = load_config(tmp_path / "etc/edge-agent/agent.toml")
    assert str(config.data_dir) == "/var/lib/edge-agent"
    (tmp_path / "var/lib/edge-agent").mkdir(parents=True)
    out = run("uninstall", "--destdir", str(tmp_path), "--no-systemctl")
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "etc/systemd/system/edge-agent.service").exists()
    assert not (tmp_path / "opt/edge-agent").exists()
    assert (tmp_path / "etc/edge-agent/agent.toml").exists() and (tmp_path / "var/lib/edge-agent").exists()
    out = run("uninstall", "--destdir", str(tmp_path), "--no-systemctl", "--purge")
    assert out.returncode == 0
    assert not (tmp_path / "etc/edge-agent").exists() and not (tmp_path / "var/lib/edge-agent").exists()


def test_existing_config_is_kept(tmp_path: Path) -> None:
    conf = tmp_path / "etc/edge-agent/agent.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text("# mine\n")
    assert run("install", "--destdir", str(tmp_path), "--no-venv", "--no-systemctl").returncode == 0
    assert conf.read_text() == "# mine\n"


def test_unknown_action_is_refused() -> None:
    out = run("reinstall")
    assert out.returncode == 2 and "usage" in out.stderr
