"""Feeding a live view from an agent that does not feed it itself.

:class:`AgentMirror` compares the agent's ``latest`` values and connector states
with what it saw at its last look and hands what is new to the live view. The
supervisor replaces the sample objects it keeps, so a new sample is a
different object: one look costs one identity check per tag. Samples that came
and went between two looks are not seen (the twin only keeps the latest
anyway); wiring ``LiveView.on_samples`` into the supervisor avoids that and the
polling delay.
"""

from __future__ import annotations

from edge_agent.model import Sample
from edge_agent.status.live import LiveView
from edge_agent.status.view import AgentView

__all__ = ["AgentMirror"]


class AgentMirror:
    """Polls an :class:`AgentView` into a :class:`LiveView` (call :meth:`sync` often, e.g. every 0.1 s).

    Connector states are always taken from here (an agent feeding its live view
    itself still has them polled: they change rarely and need no wiring).
    """

    def __init__(self, agent: AgentView, live: LiveView) -> None:
        self.agent = agent
        self.live = live
        self._seen: dict[tuple[str, str], Sample] = {}
        self._states: dict[str, tuple[str, str | None]] = {}
        self.restored = False

    def sync(self) -> int:
        """Hand new samples and connector state changes to the live view; returns the samples handed."""
        self.sync_states()
        return self.sync_samples()

    def sync_states(self) -> None:
        """Hand connector state changes (connected, disconnected...) to the live view."""
        for name, sink in list(self.agent.sinks.items()):
            st = sink.status
            state = (st.state, st.last_error)
            if self._states.get(name) != state:
                self._states[name] = state
                self.live.on_connection(name, st.state, st.since, st.last_error)

    def sync_samples(self) -> int:
        """Hand samples that are new since the last look to the live view; returns how many."""
        if not self.restored:
            self.restored = True
            first = [s for tags in self.agent.latest.values() for s in tags.values()]
            self.live.restore(first)
            self._seen = {(s.device, s.tag): s for s in first}
        fresh: list[Sample] = []
        for device, tags in list(self.agent.latest.items()):
            for tag, sample in list(tags.items()):
                key = (device, tag)
                if self._seen.get(key) is not sample:
                    self._seen[key] = sample
                    fresh.append(sample)
        if fresh:
            fresh.sort(key=lambda s: s.ts)
            self.live.on_samples(fresh)
        return len(fresh)
