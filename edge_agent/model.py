"""The one data model: a sample and an event.

Timestamps are UTC seconds since the epoch (float). Connectors, the buffer,
the sync wire format and the collector all use these two types.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

Value = float | int | str | bool


Mark = tuple[str, int, str]
"""A delivery mark ``(source, message id, digest)``: a source's message committed with the samples it carried."""


class Quality(IntEnum):
    """Quality of a sample, ordered from best to worst."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


@dataclass(frozen=True, slots=True)
class Sample:
    device: str
    tag: str
    ts: float
    value: Value
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class Event:
    device: str
    kind: str
    attributes: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
