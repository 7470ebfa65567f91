"""The analytics in SQL, for the collector's ``events`` table, in the SQLite and PostgreSQL dialects.

Every function takes a DB-API connection and the dialect name and returns the same
response model as its pure twin in :mod:`cloud_sync.analytics`. Values from a
request are always bound parameters; the only request text that reaches the SQL
itself is attribute names, which the request models restrict to
``[A-Za-z_][A-Za-z0-9_]*``, and even they are bound (as JSON paths or keys).
"""

from cloud_sync.analytics.sql.builder import Dialect, UnknownDialect, check_dialect
from cloud_sync.analytics.sql.cohort import sql_cohort
from cloud_sync.analytics.sql.events import insert_events
from cloud_sync.analytics.sql.funnel import sql_funnel
from cloud_sync.analytics.sql.readers import read_events, read_gateways, read_snapshot, sql_overview, sql_segments

__all__ = [
    "Dialect",
    "UnknownDialect",
    "check_dialect",
    "insert_events",
    "read_events",
    "read_gateways",
    "read_snapshot",
    "sql_cohort",
    "sql_funnel",
    "sql_overview",
    "sql_segments",
]
