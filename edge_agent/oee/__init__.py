"""OEE at the edge: ISO 22400-2 time model, shift calendars, six big losses, live and offline.

Public API::

    oee(samples, signals, calendar, window_from, window_to, *, options=None) -> OeeResult
    LiveOee(device, signals, calendar=None, *, options=None, retention_s=..., max_points=...)
    MachineEvents(device, signals, options=None, *, part_interval_s=0).feed(sample) / .advance(now) -> [events]
    OeeRollups(kinds, calendar, since).tick(now, engines, places) -> [oee_rollup events]
    load_calendar(path) -> Calendar; calendar_from_data(data, path, text, prefix=()) -> Calendar
    read_samples_csv(path, signals, options=None, device=None) -> CsvSamples

Definitions: docs/oee.md.
"""

from edge_agent.oee.calendar import ALWAYS, Calendar, CalendarSpec, ShiftSpan, calendar_from_data, load_calendar
from edge_agent.oee.compute import compute, oee
from edge_agent.oee.events import MachineEvents
from edge_agent.oee.live import LiveOee
from edge_agent.oee.model import Losses, OeeError, OeeOptions, OeeResult, Stop, options_for_profile
from edge_agent.oee.offline import CsvSamples, read_samples_csv
from edge_agent.oee.rollups import OeeRollups, Place
from edge_agent.oee.tracks import DeviceTracks

__all__ = [
    "ALWAYS",
    "Calendar",
    "CalendarSpec",
    "CsvSamples",
    "DeviceTracks",
    "LiveOee",
    "Losses",
    "MachineEvents",
    "OeeError",
    "OeeOptions",
    "OeeResult",
    "OeeRollups",
    "Place",
    "ShiftSpan",
    "Stop",
    "calendar_from_data",
    "compute",
    "load_calendar",
    "oee",
    "options_for_profile",
    "read_samples_csv",
]
