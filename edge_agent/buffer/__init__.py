"""The local store-and-forward buffer."""

from edge_agent.buffer.store import Buffer, BufferStats

__all__ = ["Buffer", "BufferStats"]
