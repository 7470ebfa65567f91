"""The local store-and-forward buffer: SQLite store, sync ledger, write queue and writer."""

from edge_agent.buffer.faults import BufferFault
from edge_agent.buffer.ledger import QuarantineRecord
from edge_agent.buffer.overflow import OverflowReporter
from edge_agent.buffer.recovery import MovedAside
from edge_agent.buffer.store import AppendResult, Buffer, BufferStats

__all__ = [
    "AppendResult",
    "Buffer",
    "BufferFault",
    "BufferStats",
    "MovedAside",
    "OverflowReporter",
    "QuarantineRecord",
]
