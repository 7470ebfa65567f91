"""Each registered connector's sample.toml is a valid device entry and its README documents every option."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

import edge_agent.config as config_module
import edge_agent.connectors.modbus as modbus_pkg
import edge_agent.connectors.mqtt as mqtt_pkg
import edge_agent.connectors.opcua as opcua_pkg
import edge_agent.connectors.sparkplug as sparkplug_pkg
from edge_agent.config import load_config
from edge_agent.connectors import CONNECTORS as REGISTRY
from edge_agent.connectors import connector_class
from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.connectors.sparkplug.config import SparkplugConnection
from edge_agent.profiles import PROFILE_MODELS, ModbusTag, MqttTag, OpcuaTag, SparkplugTag, TagBase

CONNECTORS = [
    ("modbus", Path(modbus_pkg.__file__).parent, ModbusConnection, ModbusTag),
    ("opcua", Path(opcua_pkg.__file__).parent, OpcuaConnection, OpcuaTag),
    ("mqtt", Path(mqtt_pkg.__file__).parent, MqttConnection, MqttTag),
    ("sparkplug", Path(sparkplug_pkg.__file__).parent, SparkplugConnection, SparkplugTag),
]
IDS = [c[0] for c in CONNECTORS]
ROW = re.compile(r"^\| `(\w+)` \| ([^|]+?) \|", re.MULTILINE)


def toml_default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def test_every_registered_connector_is_documented_and_loads() -> None:
    assert set(REGISTRY) == set(IDS) == set(PROFILE_MODELS)
    for protocol in REGISTRY:
        assert connector_class(protocol).__name__.lower().startswith(protocol)


@pytest.mark.parametrize(("protocol", "folder", "model", "tag_model"), CONNECTORS, ids=IDS)
def test_sample_is_a_valid_device(
    protocol: str, folder: Path, model: type[BaseModel], tag_model: type[BaseModel], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if protocol not in config_module.CONNECTION_MODELS:  # until config.py registers the connection model
        monkeypatch.setitem(config_module.CONNECTION_MODELS, protocol, model)
    text = (folder / "sample.toml").read_text()
    config_file = tmp_path / "agent.toml"
    config_file.write_text('gateway_id = "gw-test"\n\n' + text)
    config = load_config(config_file)
    assert len(config.devices) == 1
    device = config.devices[0]
    assert device.protocol == protocol
    assert isinstance(device.connection, model)
    # the sample shows defaults for every optional key it sets
    written = tomllib.loads(text)["devices"][0]["connection"]
    for key, value in written.items():
        field = model.model_fields[key]
        if not field.is_required() and field.default is not None:  # keys without a default may be set
            assert value == field.default, f"sample.toml {key} = {value!r}, default is {field.default!r}"


@pytest.mark.parametrize(("protocol", "folder", "model", "tag_model"), CONNECTORS, ids=IDS)
def test_readme_documents_every_option_with_its_default(
    protocol: str, folder: Path, model: type[BaseModel], tag_model: type[BaseModel]
) -> None:
    readme = (folder / "README.md").read_text()
    rows = dict(ROW.findall(readme))
    for name, field in model.model_fields.items():
        assert name in rows, f"README.md does not document connection option {name}"
        assert rows[name] == toml_default(field.default), f"README.md default of {name}"
    for name in set(tag_model.model_fields) - set(TagBase.model_fields) | {"type", "scale", "offset"}:
        assert f"`{name}`" in readme, f"README.md does not document tag key {name}"
