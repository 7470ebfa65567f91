"""The analytics API mounted in the collector app, on SQLite and PostgreSQL: events posted by other
sources (an MES) and a funnel over them, with the collector's own API keys."""

from __future__ import annotations

from typing import Any

import httpx

from tests.collector.collector_testkit import ANY_KEY, BOUND_KEY

T0 = 1_790_000_000.0


def event(i: int, kind: str, part: str, gateway: str = "gw1") -> dict[str, Any]:
    attributes = {"part_id": part, **({"result": "ok"} if kind == "part_inspected" else {})}
    return {"id": f"mes-{i}", "ts": T0 + i, "gateway": gateway, "device": "cnc-1", "kind": kind,
            "attributes": attributes}


async def test_posted_events_feed_a_funnel(client: httpx.AsyncClient) -> None:
    events = [
        event(1, "part_loaded", "P1"), event(2, "part_loaded", "P2"), event(3, "part_loaded", "P3"),
        event(4, "part_machined", "P1"), event(5, "part_machined", "P2"),
        event(6, "part_inspected", "P1"),
    ]
    answer = await client.post("/api/v1/events/batch", json={"events": events}, headers={"x-api-key": ANY_KEY})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"] == [] and answer.json()["accepted"] == 6
    again = await client.post("/api/v1/events/batch", json={"events": events[:2]}, headers={"x-api-key": ANY_KEY})
    assert again.json()["duplicates"] == 2
    body = {"from": T0, "to": T0 + 100, "entity_key": "part_id",
            "steps": [{"kind": "part_loaded"}, {"kind": "part_machined"}, {"kind": "part_inspected"}]}
    funnel = await client.post("/api/v1/analytics/funnel", json=body, headers={"x-api-key": ANY_KEY})
    assert funnel.status_code == 200, funnel.text
    assert [s["entities"] for s in funnel.json()["steps"]] == [3, 2, 1]
    denied = await client.post("/api/v1/analytics/funnel", json=body, headers={"x-api-key": "wrong"})
    assert denied.status_code == 401
    other = await client.post("/api/v1/events/batch", json={"events": [event(9, "part_loaded", "P9", "gw2")]},
                              headers={"x-api-key": BOUND_KEY})
    assert other.json()["accepted"] == 0 and other.json()["rejected"][0]["errors"][0]["field"] == "gateway"
