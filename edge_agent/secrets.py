"""Secrets in the config are references, not values.

Any secret key (``[collector] api_key``, a device connection's ``password``) may be written as

- ``"env:NAME"``: the environment variable NAME (e.g. from systemd's ``Environment=``/``EnvironmentFile=``);
- ``"file:PATH"``: the first line of a file (relative to the config file), readable by the agent only;
- ``"credential:NAME"``: a systemd credential (``LoadCredential=NAME:/etc/edge-agent/NAME`` in the unit),
  read from ``$CREDENTIALS_DIRECTORY/NAME``;

or as a literal value, which works but is reported by ``edge-agent check`` when the config file is
readable by other users. Resolved values are used only to connect; they are never logged, never
shown by ``edge-agent check``, ``/api/v1/status`` or ``/metrics``.
"""

from __future__ import annotations

import os
from pathlib import Path

PREFIXES = ("env:", "file:", "credential:")


class SecretError(ValueError):
    pass


def is_reference(value: str) -> bool:
    return value.startswith(PREFIXES)


def resolve(value: str, base: Path, environ: dict[str, str] | None = None) -> str:
    """The secret a config value stands for (the value itself when it is not a reference)."""
    env = os.environ if environ is None else environ
    if value.startswith("env:"):
        name = value[4:]
        if name not in env:
            raise SecretError(f"environment variable {name} is not set")
        return env[name]
    if value.startswith("file:"):
        return _read(base / value[5:])
    if value.startswith("credential:"):
        folder = env.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise SecretError(
                f"no systemd credentials here (CREDENTIALS_DIRECTORY is not set); add "
                f"LoadCredential={value[11:]}:/etc/edge-agent/{value[11:]} to the unit"
            )
        return _read(Path(folder) / value[11:])
    return value


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(f"secret file {path} not found") from None
    except OSError as exc:
        raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
    secret = text.splitlines()[0].strip() if text.strip() else ""
    if not secret:
        raise SecretError(f"secret file {path} is empty")
    return secret


def world_readable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False
