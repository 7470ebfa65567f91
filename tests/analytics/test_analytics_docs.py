"""docs/analytics.md: its example requests are valid requests, and every endpoint of the router is documented."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from pydantic import BaseModel

from cloud_sync.analytics.api_models import CohortRequest, EventsBatchRequest, FunnelRequest
from cloud_sync.analytics.ingest import check_events
from cloud_sync.analytics.router import analytics_router

DOC = (Path(__file__).resolve().parents[2] / "docs" / "analytics.md").read_text()
MODELS: dict[str, type[BaseModel]] = {
    "/api/v1/analytics/funnel": FunnelRequest,
    "/api/v1/analytics/cohort": CohortRequest,
    "/api/v1/events/batch": EventsBatchRequest,
}


def examples() -> list[tuple[str, str]]:
    found = []
    for block in re.findall(r"```http\n(.*?)```", DOC, re.S):
        head, _, body = block.partition("\n\n")
        path = head.split("\n")[0].split()[1]
        found.append((path, body))
    return found


@pytest.mark.parametrize(("path", "body"), examples())
def test_example_requests_are_valid(path: str, body: str) -> None:
    data = orjson.loads(body)
    MODELS[path].model_validate(data)
    if path == "/api/v1/events/batch":
        checked = check_events(data["events"], None)
        assert [i for i, _ in checked.accepted] == [0, 2] and [r.index for r in checked.rejected] == [1]


def test_every_endpoint_is_documented() -> None:
    router = analytics_router(lambda: (None, "sqlite"))
    for route in router.routes:
        path = getattr(route, "path", "")
        assert f"`{next(iter(getattr(route, 'methods', {'?'})))} {path}" in DOC, path
    assert len(examples()) == 4
