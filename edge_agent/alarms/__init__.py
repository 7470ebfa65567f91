"""Alarms: limits, machine state, connection loss and anomalies, with the ISA-18.2 lifecycle.

Public API::

    AlarmEngine(limits_by_device, settings, units)   # detection + lifecycle of every alarm; pure, time injected
      .on_sample(sample) / .on_state(...) / .on_connection(...) / .on_anomaly(...) / .tick(now) -> [Event]
      .acknowledge(id, user, now, note) / .shelve(id, user, now, duration_s, note) / .unshelve(...)
    lifecycle: activate, deactivate, acknowledge, shelve, unshelve, suppress, unsuppress, expire
    AlarmSettings                                    # the [alarms] config table
"""

from edge_agent.alarms.conditions import DurationCheck, LevelCheck, levels_of
from edge_agent.alarms.engine import PRIORITY_RANK, AlarmEngine
from edge_agent.alarms.lifecycle import (
    ChatterRule,
    Transition,
    acknowledge,
    activate,
    deactivate,
    expire,
    shelve,
    suppress,
    unshelve,
    unsuppress,
)
from edge_agent.alarms.model import (
    Alarm,
    AlarmError,
    AlarmNotFound,
    AlarmRefused,
    AlarmSettings,
    AlarmSource,
    AlarmState,
    Priority,
)

__all__ = [
    "PRIORITY_RANK",
    "Alarm",
    "AlarmEngine",
    "AlarmError",
    "AlarmNotFound",
    "AlarmRefused",
    "AlarmSettings",
    "AlarmSource",
    "AlarmState",
    "ChatterRule",
    "DurationCheck",
    "LevelCheck",
    "Priority",
    "Transition",
    "acknowledge",
    "activate",
    "deactivate",
    "expire",
    "levels_of",
    "shelve",
    "suppress",
    "unshelve",
    "unsuppress",
]
