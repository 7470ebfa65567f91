"""``python -m cloud_sync.collector`` is ``edge-collector``."""

from cloud_sync.collector.cli import main

raise SystemExit(main())
