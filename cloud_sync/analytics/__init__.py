"""Fleet analytics of the collector: pure functions over events, their SQL twins, and the API router.

Public API::

    funnel(events, FunnelRequest) -> FunnelResponse           # pure, over StoredEvent rows
    cohort(events, CohortRequest) -> CohortResponse
    segments(device_features(by_device(profiles, period)), SegmentsQuery) -> SegmentsResponse
    overview(FleetSnapshot(gateways, events), OverviewQuery) -> OverviewResponse
    sql_funnel / sql_cohort / sql_segments / sql_overview(conn, dialect, request)   # same answers, in SQL
    check_events(items, key_gateway) -> Checked;  insert_events(conn, dialect, envelopes) -> [new?]
    analytics_router(get_connection, authenticate=None) -> fastapi.APIRouter

Definitions and examples: docs/analytics.md.
"""

from cloud_sync.analytics.api_models import (
    CohortRequest,
    CohortResponse,
    FunnelRequest,
    FunnelResponse,
    OverviewQuery,
    OverviewResponse,
    SegmentsQuery,
    SegmentsResponse,
    StepSpec,
)
from cloud_sync.analytics.cohort import cohort
from cloud_sync.analytics.funnel import funnel
from cloud_sync.analytics.ingest import Checked, check_events
from cloud_sync.analytics.kmeans import kmeans, standardise
from cloud_sync.analytics.overview import FleetSnapshot, GatewayRecord, overview
from cloud_sync.analytics.profiles import ProfileTotals, by_device
from cloud_sync.analytics.records import StoredEvent, entity_of, matches
from cloud_sync.analytics.router import analytics_router
from cloud_sync.analytics.segments import device_features, segments
from cloud_sync.analytics.sql import insert_events, sql_cohort, sql_funnel, sql_overview, sql_segments

__all__ = [
    "Checked",
    "CohortRequest",
    "CohortResponse",
    "FleetSnapshot",
    "FunnelRequest",
    "FunnelResponse",
    "GatewayRecord",
    "OverviewQuery",
    "OverviewResponse",
    "ProfileTotals",
    "SegmentsQuery",
    "SegmentsResponse",
    "StepSpec",
    "StoredEvent",
    "analytics_router",
    "by_device",
    "check_events",
    "cohort",
    "device_features",
    "entity_of",
    "funnel",
    "insert_events",
    "kmeans",
    "matches",
    "overview",
    "segments",
    "sql_cohort",
    "sql_funnel",
    "sql_overview",
    "sql_segments",
    "standardise",
]
