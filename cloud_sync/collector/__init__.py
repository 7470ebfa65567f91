"""The central collector: receives gateway batches over HTTP and stores them exactly once.

``create_app(store, api_keys)`` builds the FastAPI app, ``open_store(url)`` opens
storage (``sqlite:///PATH``), and ``edge-collector serve`` runs both.
"""

from cloud_sync.collector.app import create_app
from cloud_sync.collector.store import SQLiteStore, Store, StoreError, UnsupportedBackend, open_store

__all__ = ["SQLiteStore", "Store", "StoreError", "UnsupportedBackend", "create_app", "open_store"]
