"""What the status app reads from the agent: :class:`AgentView` (``edge_agent.supervisor.Agent`` fits it)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from edge_agent.connectors.base import DeviceStatus
from edge_agent.model import Event, Sample
from edge_agent.twin.spec import DeviceView

__all__ = ["AgentView", "ConfigView", "SinkView"]


class ConfigView(Protocol):
    @property
    def gateway_id(self) -> str: ...

    @property
    def devices(self) -> Sequence[DeviceView]: ...

    @property
    def listen(self) -> tuple[str, int]: ...


class SinkView(Protocol):
    @property
    def status(self) -> DeviceStatus: ...


class AgentView(Protocol):
    """The agent as the status app sees it.

    An agent that has a ``live`` attribute (a :class:`~edge_agent.status.live.LiveView`)
    feeds it itself; otherwise the app makes one and mirrors ``latest`` and ``sinks``
    into it (:class:`~edge_agent.status.mirror.AgentMirror`).
    """

    @property
    def config(self) -> ConfigView: ...

    @property
    def ready(self) -> asyncio.Event: ...

    @property
    def stopping(self) -> asyncio.Event: ...

    @property
    def latest(self) -> Mapping[str, Mapping[str, Sample]]: ...

    @property
    def sinks(self) -> Mapping[str, SinkView]: ...

    async def status(self) -> dict[str, Any]: ...

    def record_event(self, event: Event) -> None: ...
