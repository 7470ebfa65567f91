"""The configuration and CLI reference, generated from the models and the argument parser.

``python -m edge_agent.ops.reference > docs/reference.md`` writes it; a test checks that
the committed file is current, so every config key and every command stays documented.
"""

from __future__ import annotations

import argparse
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

HEADER = """# Reference: configuration keys and commands

Generated from the code by `python -m edge_agent.ops.reference > docs/reference.md`; a test keeps it current.
See the README for a walk-through and `docs/` for each subject.
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if origin is not None and getattr(origin, "__name__", "") == "Literal":
        return " / ".join(repr(a) for a in get_args(annotation))
    if str(origin) == "typing.Literal":
        return " / ".join(repr(a) for a in get_args(annotation))
    if origin in (list, tuple):
        return f"list of {_type_name(get_args(annotation)[0])}" if get_args(annotation) else "list"
    if origin is dict:
        return "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(table)"
    if value is None:
        return "none"
    return f"`{value!r}`" if not isinstance(value, str) else f'`"{value}"`'


def model_table(title: str, model: type[BaseModel]) -> list[str]:
    lines = [f"### {title}", "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        about = (field.description or "").replace("|", "\\|")
        kind = _type_name(field.annotation).replace("|", "\\|")
        lines.append(f"| `{name}` | {kind} | {_default(field)} | {about} |")
    return [*lines, ""]


def config_sections() -> list[tuple[str, type[BaseModel]]]:
    from edge_agent.alarms.model import AlarmSettings
    from edge_agent.config import (
        CONNECTION_MODELS,
        AgentFile,
        BehaviourSettings,
        BufferSettings,
        CollectorSettings,
        DeviceEntry,
        HttpSettings,
        Location,
        LoggingSettings,
    )
    from edge_agent.edge_node.config import EdgeNodeSettings
    from edge_agent.profiles import PROFILE_MODELS, AlarmLimit, OeeSignals, ProfileInfo, RulSettings
    from edge_agent.status.settings import StatusSettings, UserEntry
    from edge_agent.twin.settings import TwinSettings

    sections: list[tuple[str, type[BaseModel]]] = [
        ("Agent config: top level", AgentFile),
        ("[logging]", LoggingSettings),
        ("[http]", HttpSettings),
        ("[buffer]", BufferSettings),
        ("[collector]", CollectorSettings),
        ("[status]", StatusSettings),
        ("[[users]]", UserEntry),
        ("[twin]", TwinSettings),
        ("[alarms]", AlarmSettings),
        ("[behaviour]", BehaviourSettings),
        ("[sparkplug_node]", EdgeNodeSettings),
        ("[[devices]]", DeviceEntry),
        ("[devices.location]", Location),
    ]
    sections += [(f"[devices.connection] for protocol `{p}`", m) for p, m in CONNECTION_MODELS.items()]
    sections += [("Profile: [profile]", ProfileInfo), ("Profile: [oee]", OeeSignals),
                 ("Profile: [[alarms]]", AlarmLimit), ("Profile: [maintenance.rul]", RulSettings)]
    for protocol, model in PROFILE_MODELS.items():
        sections.append((f"Profile for protocol `{protocol}`: top level", model))
        tag_model = _inner(model.model_fields["tags"].annotation)
        if tag_model is not None:
            sections.append((f"Profile for protocol `{protocol}`: [[tags]]", tag_model))
            sections += _nested(f"Profile for protocol `{protocol}`: [tags.", tag_model)
        for name, field in model.model_fields.items():
            inner = _inner(field.annotation)
            if name not in ("tags", "profile", "oee", "alarms") and inner is not None:
                sections.append((f"Profile for protocol `{protocol}`: [{name}]", inner))
    return sections


def _nested(prefix: str, model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """The tables inside a table (``[tags.waveform]``, ``[tags.waveform.bearing]``), depth first."""
    out: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        inner = _inner(field.annotation)
        if inner is not None:
            out.append((f"{prefix}{name}]", inner))
            out += _nested(f"{prefix}{name}.", inner)
    return out


def _inner(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner(arg)
        if found is not None:
            return found
    return None


def commands(parser: argparse.ArgumentParser, prog: str) -> list[tuple[str, str, list[str]]]:
    """(command line, help, options) for every subcommand, depth first."""
    out: list[tuple[str, str, list[str]]] = []
    for action in parser._actions:  # argparse keeps subcommands here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                options = [", ".join(a.option_strings) for a in sub._actions
                           if a.option_strings and a.dest != "help"]
                out.append((f"{prog} {name}", helps.get(name, ""), options))
                out += commands(sub, f"{prog} {name}")
    return out


def cli_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    from cloud_sync.collector.cli import build_parser as collector_parser
    from edge_agent.cli import build_parser as agent_parser
    from simulators.cli import build_parser as sim_parser

    return [("edge-agent", agent_parser()), ("edge-collector", collector_parser()), ("edge-sim", sim_parser())]


def render() -> str:
    lines = [HEADER, "## Commands", ""]
    for prog, parser in cli_parsers():
        for line, about, options in commands(parser, prog):
            opts = " ".join(f"`{o}`" for o in options)
            lines.append(f"- `{line}`: {about}{'. Options: ' + opts if opts else ''}")
    lines += ["", "## Configuration keys", ""]
    for title, model in config_sections():
        lines += model_table(title, model)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
