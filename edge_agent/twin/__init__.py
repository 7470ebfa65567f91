"""Digital twin of every device: reported values, derived machine state, desired setpoints, meta.

Public API::

    spec_for(device, settings) -> TwinSpec          # static facts from the profile and config
    Twin(spec).apply(sample) -> ChangeSet           # pure updates; restore(samples) marks values stale
    TwinRegistry(specs, settings)                   # all twins, trends, timelines, twin_changed events
    ChangeDebouncer(specs, settings)                # deadband + debounce of change events
    TwinSettings                                    # the [twin] config table

Pure: no clock and no I/O; every update takes the instant it happened.
"""

from edge_agent.twin.debounce import TWIN_CHANGED, ChangeDebouncer
from edge_agent.twin.model import (
    ChangeSet,
    ConnectionInfo,
    HealthFigures,
    MachineState,
    OeeFigures,
    Parts,
    ReportedValue,
    Setpoint,
)
from edge_agent.twin.registry import TwinRegistry, Update
from edge_agent.twin.settings import TwinSettings
from edge_agent.twin.shift import shift_start
from edge_agent.twin.spec import DeviceView, TagSpec, TwinSpec, spec_for
from edge_agent.twin.timeline import Segment, StateTimeline
from edge_agent.twin.trend import TrendCache
from edge_agent.twin.twin import Twin, category_of, normalize_code

__all__ = [
    "TWIN_CHANGED",
    "ChangeDebouncer",
    "ChangeSet",
    "ConnectionInfo",
    "DeviceView",
    "HealthFigures",
    "MachineState",
    "OeeFigures",
    "Parts",
    "ReportedValue",
    "Segment",
    "Setpoint",
    "StateTimeline",
    "TagSpec",
    "TrendCache",
    "Twin",
    "TwinRegistry",
    "TwinSettings",
    "TwinSpec",
    "Update",
    "category_of",
    "normalize_code",
    "shift_start",
    "spec_for",
]
