"""One error tree for the agent.

    EdgeError
     +-- ConfigError          a config or profile is invalid (carries one line per problem)
     +-- ConnectorError       a device could not be reached or read
     |    +-- ConnectError
     |    +-- ReadError
     |    +-- DeviceTimeout
     +-- StoreError           the SQLite buffer failed (disk full, read-only, corrupt)
     +-- UploadError          a batch could not be delivered to the collector

Foreign exceptions (pymodbus, asyncua, paho, httpx, sqlite3) are mapped to these
at the boundary of the module that talks to the library.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(EdgeError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ConnectorError(EdgeError):
    pass


class ConnectError(ConnectorError):
    pass


class ReadError(ConnectorError):
    pass


class DeviceTimeout(ConnectorError):
    pass


class StoreError(EdgeError):
    pass


class UploadError(EdgeError):
    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
