"""Turn pydantic validation errors into one precise line per problem.

Each line reads ``FILE:LINE: KEY: what is wrong``; LINE is found by scanning the
TOML text for the key (tomllib keeps no positions), and unknown keys get a
did-you-mean from the model's field names.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")
_INLINE_KEY = re.compile(r"([A-Za-z0-9_\-]+)\s*=")


def _split_key(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]


def key_lines(text: str) -> dict[Loc, int]:
    """Map every key path of a TOML document to the line where it is written."""
    lines: dict[Loc, int] = {}
    counters: dict[tuple[str, ...], int] = {}
    current: list[str | int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = _split_key(header.group(2))
            path: list[str | int] = []
            # resolve intermediate arrays of tables to their latest element
            for name in names[:-1]:
                path.append(name)
                key = tuple(str(p) for p in path)
                if key in counters:
                    path.append(counters[key])
            path.append(names[-1])
            if header.group(1) == "[[":
                key = tuple(str(p) for p in path)
                counters[key] = counters.get(key, -1) + 1
                path.append(counters[key])
            current = path
            lines.setdefault(tuple(current), lineno)
            continue
        match = _KEY.match(line)
        if match:
            full = (*current, *_split_key(match.group(1)))
            lines.setdefault(full, lineno)
            rest = line[match.end():]
            if "{" in rest:
                for inner in _INLINE_KEY.finditer(rest):
                    lines.setdefault((*full, inner.group(1)), lineno)
    return lines


def line_of(lines: dict[Loc, int], loc: Sequence[str | int]) -> int | None:
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def parse_dotted(text: str) -> Loc:
    """The inverse of :func:`dotted`: ``alarms[0].tag`` -> ("alarms", 0, "tag")."""
    loc: list[str | int] = []
    for part in re.findall(r"[A-Za-z0-9_\-]+|\[\d+\]", text):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(loc)


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """Best effort: the pydantic model that owns the last element of loc."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _inner_model(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in args or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def describe(error: Any, model: type[BaseModel] | None, loc: Loc) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        owner = _model_at(model, loc) if model else None
        name = str(loc[-1])
        hint = ""
        if owner is not None:
            close = difflib.get_close_matches(name, list(owner.model_fields), n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        hint = ""
        if isinstance(value, str):
            options = re.findall(r"'([^']*)'", str(expected))
            close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
        return f"must be one of {expected}, got {value!r}{hint}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"expected an integer, got {value!r}"
    if kind in {"float_type", "float_parsing"}:
        return f"expected a number, got {value!r}"
    if kind in {"string_type"}:
        return f"expected a string, got {value!r}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, got {value!r}"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        ctx = error.get("ctx", {})
        bound = next(iter(ctx.values()), "?")
        words = {
            "greater_than_equal": ">=",
            "less_than_equal": "<=",
            "greater_than": ">",
            "less_than": "<",
        }[kind]
        return f"must be {words} {bound}, got {value!r}"
    if kind in {"list_type", "dict_type", "model_type", "model_attributes_type"}:
        return f"wrong type: {error['msg'].lower()}, got {type(value).__name__}"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return str(error["msg"])


def format_errors(
    exc: ValidationError, path: Path | str, text: str, model: type[BaseModel], prefix: Loc = ()
) -> list[str]:
    lines = key_lines(text)
    problems = []
    for error in exc.errors():
        loc: Loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p and "]" in p))
        loc = prefix + loc
        message = describe(error, model, loc[len(prefix):])
        if loc:
            line = line_of(lines, loc)
            message = f"{dotted(loc)}: {message}"
        else:  # a check across fields names its key at the start of the message
            line = line_of(lines, parse_dotted(message.split(" ", 1)[0]))
        where = f"{path}:{line}" if line else f"{path}"
        problems.append(f"{where}: {message}")
    return problems


def load_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """Read and parse a TOML file, raising ConfigError with the file and line on failure."""
    from edge_agent.errors import ConfigError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)$", message)
        where = f"{path}:{found.group(1)}" if found else str(path)
        raise ConfigError([f"{where}: invalid TOML: {message}"]) from None
