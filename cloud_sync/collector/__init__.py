"""The central collector: receives gateway batches over HTTP and stores them exactly once.

``create_app(store, api_keys)`` builds the FastAPI app, ``open_store(url)`` opens
storage (``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DBNAME``), and
``edge-collector serve`` runs both; ``edge-collector keys`` manages the API keys
stored in the database. Beyond storing batches it keeps the latest twin of every
device (:mod:`.twin`), serves fleet OEE (:mod:`.oee_api`) and streamed exports
(:mod:`.export_api`); see docs/collector.md.
"""

from cloud_sync.collector.app import create_app
from cloud_sync.collector.sqlite_store import SQLiteStore
from cloud_sync.collector.store import (
    EventQuery,
    KeyRecord,
    NotFound,
    SampleQuery,
    Store,
    StoreError,
    UnsupportedBackend,
    open_store,
)

__all__ = [
    "EventQuery",
    "KeyRecord",
    "NotFound",
    "SQLiteStore",
    "SampleQuery",
    "Store",
    "StoreError",
    "UnsupportedBackend",
    "create_app",
    "open_store",
]
