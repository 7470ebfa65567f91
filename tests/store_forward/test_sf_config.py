"""The [buffer] and [collector] settings of store-and-forward: defaults, and mistakes reported with file:line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.errors import ConfigError


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text('gateway_id = "gw"\n' + body)
    return path


def test_defaults_and_new_keys(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
[buffer]
max_bytes = 268435456
integrity_check = "full"
overflow_event_interval_s = 30
[collector]
url = "https://collector.example.com"
batch_max_bytes = 1048576
backoff_initial_s = 0.5
ca_file = "ca.pem"
client_cert = "gw.pem"
client_key = "gw.key"
"""))
    assert config.buffer.max_bytes == 256 * 1024**2 and config.buffer.integrity_check == "full"
    assert config.collector is not None
    assert (config.collector.batch_max_bytes, config.collector.ca_file) == (1024**2, "ca.pem")
    defaults = load_config(write(tmp_path, '[collector]\nurl = "http://c"\n'))
    assert defaults.buffer.max_bytes == 1024**3 and defaults.buffer.on_full == "drop_oldest"
    assert defaults.collector is not None and defaults.collector.http2 is False


def test_mistakes_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, '[buffer]\nmax_bytes = 100\n[collector]\nurl = "https://c"\nclient_key = "k"\n'))
    assert info.value.problems == [
        f"{tmp_path / 'agent.toml'}:3: buffer.max_bytes: must be >= 65536, got 100",
        f"{tmp_path / 'agent.toml'}:4: collector: client_key needs client_cert",
    ]


@pytest.mark.skipif(importlib.util.find_spec("h2") is not None, reason="h2 is installed here")
def test_http2_without_h2_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs the 'h2' package"):
        load_config(write(tmp_path, '[collector]\nurl = "https://c"\nhttp2 = true\n'))
