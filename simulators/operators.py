"""Simulated operators on the agent's status page: log in, acknowledge alarms, shelve some, log out, go idle.

:class:`OperatorModel` decides (pure, seeded): how long an operator takes to
acknowledge an alarm depends on the shift (quick on the early shift, slower on
the late one, slowest at night: a log-normal delay around the shift's median),
urgent and high alarms are acknowledged sooner, a low or medium alarm is now and
then shelved instead (a nuisance alarm), and a session lasts a while before the
operator logs out or walks away (the page logs an idle session out by itself),
then comes back after a pause. ``time_scale`` shrinks every delay (a demo that
runs minutes, not shifts).

:func:`run_operator` plays one operator against the agent's HTTP API
(``POST /api/v1/login``, ``GET /api/v1/alarms``, ``POST /api/v1/alarms/{id}/ack``
and ``/shelve``, ``POST /api/v1/logout``), so the agent records the same
``operator_login``, ``alarm_acknowledged``, ``alarm_shelved`` and
``operator_logout`` events a person's clicks would.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal
from urllib.parse import quote

import httpx

__all__ = ["SHIFTS", "Decision", "OperatorModel", "OperatorStats", "OperatorStyle", "run_operator", "shift_of"]

log = logging.getLogger("simulators.operators")

SHIFTS = (("early", 6, 14), ("late", 14, 22), ("night", 22, 6))
"""Shift name, first hour, end hour (local time)."""
UNACKED = ("unack", "rtn_unack")
PRIORITY_FACTOR = {"urgent": 0.4, "high": 0.7, "medium": 1.0, "low": 1.5}


def shift_of(ts: float, tz: tzinfo | None = None) -> str:
    """The shift in force at ``ts`` (local time of ``tz``; the machine's time zone when ``None``)."""
    hour = datetime.fromtimestamp(ts, tz).hour
    for name, first, end in SHIFTS:
        if (first <= hour < end) if first < end else (hour >= first or hour < end):
            return name
    raise AssertionError(hour)  # the shifts cover the day


@dataclass(frozen=True)
class OperatorStyle:
    """How an operator works; seconds at ``time_scale`` 1."""

    ack_median_s: dict[str, float] = field(default_factory=lambda: {"early": 30.0, "late": 50.0, "night": 110.0})
    ack_sigma: float = 0.6
    shelve_p: float = 0.12
    shelve_s: tuple[float, float] = (600.0, 1800.0)
    session_s: tuple[float, float] = (1200.0, 3600.0)
    away_s: tuple[float, float] = (300.0, 900.0)
    logout_p: float = 0.7
    """Chance a session ends with a logout; otherwise the operator walks away and the page's idle timeout ends it."""


@dataclass(frozen=True)
class Decision:
    action: Literal["ack", "shelve"]
    after_s: float
    note: str = ""
    shelve_s: float | None = None


class OperatorModel:
    """The seeded decisions of one operator (see the module docstring)."""

    def __init__(self, seed: int, style: OperatorStyle | None = None, time_scale: float = 1.0,
                 tz: tzinfo | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.rng = random.Random(seed)
        self.style = style or OperatorStyle()
        self.scale = time_scale
        self.tz = tz

    def decide(self, alarm: dict[str, Any], now: float) -> Decision:
        """What to do about an unacknowledged ``alarm`` (as ``GET /api/v1/alarms`` lists it) seen at ``now``."""
        s, rng = self.style, self.rng
        median = s.ack_median_s[shift_of(now, self.tz)] * PRIORITY_FACTOR.get(str(alarm.get("priority")), 1.0)
        delay = median * math.exp(rng.gauss(0.0, s.ack_sigma)) * self.scale
        if alarm.get("priority") in ("low", "medium") and rng.random() < s.shelve_p:
            return Decision("shelve", delay, "nuisance, shelved for the shift's checks",
                            rng.uniform(*s.shelve_s) * self.scale)
        return Decision("ack", delay, "seen" if rng.random() < 0.7 else "checked at the machine")

    def session_s(self) -> float:
        return self.rng.uniform(*self.style.session_s) * self.scale

    def away_s(self) -> float:
        return self.rng.uniform(*self.style.away_s) * self.scale

    def logs_out(self) -> bool:
        return self.rng.random() < self.style.logout_p


@dataclass
class OperatorStats:
    logins: int = 0
    logouts: int = 0
    walked_away: int = 0
    acks: int = 0
    shelves: int = 0
    refused: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop``; ``True`` when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        return False
    return True


async def run_operator(agent_url: str, user: str, password: str, model: OperatorModel, stop: asyncio.Event,
                       *, poll_s: float = 1.0, clock: Callable[[], float] = time.time) -> OperatorStats:
    """Play one operator on the agent at ``agent_url`` until ``stop`` is set (see the module docstring)."""
    stats = OperatorStats()
    async with httpx.AsyncClient(base_url=agent_url, timeout=10.0) as client:
        while not stop.is_set():
            try:
                answer = await client.post("/api/v1/login", json={"name": user, "password": password})
            except httpx.HTTPError as exc:
                stats.errors += 1
                log.debug("operator %s: login failed: %s", user, exc)
                if await _pause(stop, 2.0):
                    break
                continue
            if answer.status_code != 200:
                stats.refused += 1
                log.warning("operator %s: login refused: %s %s", user, answer.status_code, answer.text[:200])
                if await _pause(stop, 10.0):
                    break
                continue
            stats.logins += 1
            auth = {"authorization": f"Bearer {answer.json()['token']}"}
            session_end = clock() + model.session_s()
            planned: dict[str, tuple[float, Decision]] = {}
            while not stop.is_set() and clock() < session_end:
                try:
                    await _work(client, auth, model, planned, stats, clock)
                except httpx.HTTPError as exc:
                    stats.errors += 1
                    log.debug("operator %s: %s", user, exc)
                if await _pause(stop, poll_s):
                    break
            if model.logs_out() or stop.is_set():
                try:
                    await client.post("/api/v1/logout", headers=auth)
                    stats.logouts += 1
                except httpx.HTTPError:
                    stats.errors += 1
            else:
                stats.walked_away += 1
            if stop.is_set() or await _pause(stop, model.away_s()):
                break
    return stats


async def _work(client: httpx.AsyncClient, auth: dict[str, str], model: OperatorModel,
                planned: dict[str, tuple[float, Decision]], stats: OperatorStats, clock: Callable[[], float]) -> None:
    answer = await client.get("/api/v1/alarms", params={"state": "active"}, headers=auth)
    answer.raise_for_status()
    now = clock()
    waiting = {str(a["id"]): a for a in answer.json().get("alarms", []) if a.get("state") in UNACKED
               and not a.get("shelved_until")}
    for alarm_id in list(planned):
        if alarm_id not in waiting:
            del planned[alarm_id]  # acknowledged by someone else, shelved, or gone
    for alarm_id, alarm in waiting.items():
        if alarm_id not in planned:
            planned[alarm_id] = (now, model.decide(alarm, now))
    for alarm_id, (seen, decision) in list(planned.items()):
        if now < seen + decision.after_s:
            continue
        path = f"/api/v1/alarms/{quote(alarm_id, safe='')}/{decision.action}"
        body: dict[str, Any] = {"note": decision.note}
        if decision.action == "shelve":
            body["duration_s"] = decision.shelve_s
        done = await client.post(path, json=body, headers=auth)
        del planned[alarm_id]
        if done.status_code == 200:
            if decision.action == "ack":
                stats.acks += 1
            else:
                stats.shelves += 1
        else:
            stats.refused += 1
            log.debug("operator: %s %s answered %s %s", decision.action, alarm_id, done.status_code, done.text[:200])
