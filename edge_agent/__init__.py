"""Edge IoT gateway agent."""

from edge_agent.model import Event, Quality, Sample

__all__ = ["Event", "Quality", "Sample"]
__version__ = "0.1.0"
