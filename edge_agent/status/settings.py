"""Config tables of the status page and API: ``[status]`` and ``[[users]]``.

```toml
[status]
open_viewing = true          # anyone on the plant network may look; false: viewing needs a login too
session_ttl_s = 43200        # a login lasts 12 h
stream_queue = 256           # messages waiting per live-stream client before the oldest are dropped
max_stream_clients = 64

[[users]]                    # operators; hash with: python -m edge_agent.status.passwd
name = "alice"
password_hash = "scrypt$16384$8$1$...$..."
role = "operator"            # viewer | operator (ack, shelve) | engineer (also setpoints) | admin
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from edge_agent.alarms.model import AlarmSettings
from edge_agent.profiles import Strict
from edge_agent.twin.settings import TwinSettings

__all__ = ["ROLES", "PageSettings", "Role", "StatusSettings", "UserEntry", "settings_from"]

Role = Literal["viewer", "operator", "engineer", "admin"]
ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"view"}),
    "operator": frozenset({"view", "ack", "shelve"}),
    "engineer": frozenset({"view", "ack", "shelve", "write"}),
    "admin": frozenset({"view", "ack", "shelve", "write", "admin"}),
}


class StatusSettings(Strict):
    """The ``[status]`` table (see the module docstring)."""

    open_viewing: bool = True
    session_ttl_s: float = Field(default=12 * 3600.0, gt=0)
    cookie_secure: bool = Field(default=False, description="send the session cookie over HTTPS only")
    stream_queue: int = Field(default=256, ge=8, le=100_000)
    max_stream_clients: int = Field(default=64, ge=1, le=10_000)
    heartbeat_s: float = Field(default=2.0, gt=0, le=60)
    oee_refresh_s: float = Field(default=5.0, gt=0)
    history_max_points: int = Field(default=2000, ge=10, le=100_000)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: float = Field(default=60.0, ge=0)


class UserEntry(Strict):
    """One ``[[users]]`` entry: a name, a scrypt hash of the password and a role."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.@\-]{1,64}$")
    password_hash: str = Field(pattern=r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_\-]+=*\$[A-Za-z0-9_\-]+=*$")
    role: Role = "operator"


@dataclass(frozen=True)
class PageSettings:
    """Everything the status package reads from the config."""

    status: StatusSettings = field(default_factory=StatusSettings)
    users: tuple[UserEntry, ...] = ()
    twin: TwinSettings = field(default_factory=TwinSettings)
    alarms: AlarmSettings = field(default_factory=AlarmSettings)


def settings_from(config: Any) -> PageSettings:
    """The settings of an agent config; tables it does not have (yet) take their defaults."""
    return PageSettings(
        status=getattr(config, "status", None) or StatusSettings(),
        users=tuple(getattr(config, "users", None) or ()),
        twin=getattr(config, "twin", None) or TwinSettings(),
        alarms=getattr(config, "alarms", None) or AlarmSettings(),
    )
