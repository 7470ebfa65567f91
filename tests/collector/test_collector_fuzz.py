"""The OpenAPI document fuzzed with schemathesis, in process (ASGI), on both backends.

For every operation, requests generated from the document (and, for batches,
some repaired into near-valid ones so they reach the store) must get no 5xx,
an answer the document describes (status, content type, body schema), and
must not change the stored rows unless the batch was acknowledged, and then
by exactly what the acknowledgement says.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from collector_testkit import ANY_KEY, BOUND_KEY, KEYS, TABLES, Backend, SQLiteBackend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cloud_sync.collector.app import create_app
from cloud_sync.collector.store import Store
from cloud_sync.schema import Batch, batch_id

BATCH_FIELDS = frozenset(Batch.model_fields)
POST_EXAMPLES = 60
GET_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ_SETTINGS = settings(
    deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck), print_blob=True
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
# mostly well-typed columns, so that many rows get through validation to the store
_ts = st.one_of(st.floats(min_value=0, max_value=2e9), st.integers(min_value=-(2**64), max_value=2**64), _scalars)
_quality = st.one_of(st.integers(min_value=-(2**64), max_value=2**64), st.integers(0, 3), _scalars)
_sample_row = st.tuples(st.text(max_size=6), st.text(max_size=6), _ts, _scalars, _quality)
_event_row = st.tuples(
    st.text(max_size=6),
    _ts,
    st.text(max_size=6),
    st.text(max_size=6),
    st.dictionaries(st.text(max_size=4), _json, max_size=3) | _json,
)


@contextmanager
def row_counter(backend: Backend) -> Iterator[Callable[[], dict[str, int]]]:
    """Counts of every table through one connection kept open (the fuzz loop calls it often)."""
    sql = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {t}" for t in TABLES)
    if isinstance(backend, SQLiteBackend):
        conn = sqlite3.connect(backend.path)
        try:
            yield lambda: {table: count for table, count in conn.execute(sql).fetchall()}
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(backend.url, autocommit=True) as pg:
        yield lambda: {table: count for table, count in pg.execute(sql).fetchall()}


def repair(body: Any, stream: str, gateway: str, first: int, rows: list[tuple[Any, ...]]) -> Any:
    """Make a generated body a batch the schema model accepts, with generated row contents."""
    if not isinstance(body, dict):
        body = {}
    last = first + max(len(rows), 1) - 1
    body.update(
        schema_version=1,
        gateway_id=gateway,
        stream=stream,
        first_seq=first,
        last_seq=last,
        batch_id=batch_id(gateway, stream, first, last),
        sent_at=1.0,
        rows=[[first + i, *row] for i, row in enumerate(rows)],
    )
    body.setdefault("backlog", {})
    if not isinstance(body["backlog"], dict):
        body["backlog"] = {}
    return {key: value for key, value in body.items() if key in BATCH_FIELDS}


def check_no_partial_write(before: dict[str, int], after: dict[str, int], status: int, answer: Any) -> None:
    """A refused batch or a duplicate changes no row; an accepted one adds a batch and exactly its new rows."""
    delta = {table: after[table] - before[table] for table in TABLES}
    if status != 200 or answer["duplicate_batch"]:
        assert set(delta.values()) == {0}, f"answer {status} {answer}, yet the stored rows changed: {delta}"
        return
    assert delta["batches"] == 1, delta
    assert delta["samples"] + delta["events"] == answer["accepted"], (delta, answer)
    assert delta["gateways"] in (0, 1) and delta["api_keys"] == 0, delta


def test_openapi_fuzz(backend: Backend, store: Store) -> None:
    app = create_app(store, KEYS, rate_limit=0)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    keys = st.sampled_from([ANY_KEY, ANY_KEY, BOUND_KEY, "wrong"])

    with row_counter(backend) as counts:
        post = schema["/api/v1/batches"]["POST"]

        @settings(FUZZ_SETTINGS, max_examples=POST_EXAMPLES)
        @given(
            case=post.as_strategy(),
            key=keys,
            fix=st.sampled_from(["no", "samples", "events", "events", "samples"]),
            gateway=st.sampled_from(["gw1", "gw2"]),
            first=st.integers(min_value=1, max_value=40),
            sample_rows=st.lists(_sample_row, min_size=1, max_size=5),
            event_rows=st.lists(_event_row, min_size=1, max_size=4),
        )
        def fuzz_batches(
            case: Any,
            key: str,
            fix: str,
            gateway: str,
            first: int,
            sample_rows: list[tuple[Any, ...]],
            event_rows: list[tuple[Any, ...]],
        ) -> None:
            if fix != "no":
                case.body = repair(case.body, fix, gateway, first, sample_rows if fix == "samples" else event_rows)
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "content-encoding"}
            before = counts()
            response = case.call(headers={"x-api-key": key})
            case.validate_response(response, checks=CHECKS)
            answer = response.json() if response.status_code == 200 else None
            check_no_partial_write(before, counts(), response.status_code, answer)

        fuzz_batches()

        reads = [
            (path, "GET")
            for path in (
                "/api/v1/stats",
                "/api/v1/gateways",
                "/api/v1/samples",
                "/api/v1/events",
                "/health",
                "/api/v1/gateways/{gateway}/devices",
                "/api/v1/gateways/{gateway}/devices/{device}/twin",
                "/api/v1/oee",
            )
        ]
        for path, method in [*reads, ("/api/v1/export", "POST")]:
            operation = schema[path][method]

            @settings(FUZZ_SETTINGS, max_examples=GET_EXAMPLES)
            @given(case=operation.as_strategy(), key=keys)
            def fuzz_reads(case: Any, key: str) -> None:
                before = counts()
                response = case.call(headers={"x-api-key": key})
                case.validate_response(response, checks=CHECKS)
                assert counts() == before

            fuzz_reads()


@pytest.mark.parametrize("path", ["/metrics"])
def test_metrics_answer_as_documented(store: Store, path: str) -> None:
    app = create_app(store, KEYS)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    case = schema[path]["GET"].Case()
    case.validate_response(case.call(), checks=CHECKS)
