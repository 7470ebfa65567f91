"""The analytics API as a FastAPI router, to be mounted in the collector app.

``analytics_router(get_connection, authenticate=...)`` adds:

* ``POST /api/v1/analytics/funnel``, ``POST /api/v1/analytics/cohort`` (JSON bodies),
* ``GET /api/v1/analytics/segments``, ``GET /api/v1/analytics/overview`` (query parameters),
* ``POST /api/v1/events`` (one event) and ``POST /api/v1/events/batch`` (``{"events": [...]}``).

``get_connection()`` returns ``(connection, dialect)`` -- a DB-API connection to the
collector's database and ``"sqlite"`` or ``"postgresql"`` -- or a context manager
yielding that pair (a pooled connection, say), entered for one request. A bare pair
is not closed by the router. Work runs in the thread pool, never on the event loop.
Posted events are written through ``get_write_connection`` when it is given.

``authenticate(key)`` gets the ``x-api-key`` header (or ``None``) and returns an
identity with a ``gateway`` attribute: the gateway the key is bound to, or ``None``
for a key that may act for any gateway; it raises to refuse (the collector's own
check raises its ``Rejected``, which the collector app turns into 401). A bound
key reads and writes only its gateway. Without ``authenticate`` every request is
treated as coming from a key for any gateway: for tests and trusted networks only.

The key is checked before anything else. Errors are ``{"detail": ..., "errors":
[{"field", "message"}]}``: 400 for a body that is not JSON or a bad query
parameter, 403 for another gateway than the key's, 413 for a body over
:data:`MAX_REQUEST_BYTES` (:data:`MAX_BATCH_BYTES` for a batch), 422 for a request
or event that does not fit its model, 503 when the database fails.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from cloud_sync.analytics.api_models import (
    AnalyticsErrorBody,
    CohortRequest,
    CohortResponse,
    EventsAccepted,
    EventsBatchRequest,
    FunnelRequest,
    FunnelResponse,
    OverviewQuery,
    OverviewResponse,
    SegmentsQuery,
    SegmentsResponse,
)
from cloud_sync.analytics.ingest import Checked, check_events
from cloud_sync.analytics.sql import check_dialect, insert_events, sql_cohort, sql_funnel, sql_overview, sql_segments
from cloud_sync.analytics.sql.builder import Connection, Dialect
from edge_agent.behaviour.envelope import EventEnvelope

__all__ = [
    "API_KEY_HEADER",
    "MAX_BATCH_BYTES",
    "MAX_REQUEST_BYTES",
    "Authenticate",
    "GetConnection",
    "analytics_router",
]

log = logging.getLogger("cloud_sync.analytics")

API_KEY_HEADER = "x-api-key"
MAX_REQUEST_BYTES = 1 << 20
"""The largest body of an analytics request or of one posted event."""
MAX_BATCH_BYTES = 16 << 20
"""The largest body of ``POST /api/v1/events/batch``."""
GetConnection = Callable[[], "tuple[Any, str] | AbstractContextManager[tuple[Any, str]]"]
Authenticate = Callable[[str | None], Any]
M = TypeVar("M", bound=BaseModel)


class _Refused(Exception):
    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _refusal(exc: _Refused) -> Response:
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.errors is not None:
        body["errors"] = exc.errors
    return _json(body, exc.status)


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": str(err["msg"])}
        for err in exc.errors(include_url=False)
    ][:50]


def _parse(model: type[M], data: Any, status: int, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc)
        raise _Refused(status, f"invalid {what}: {len(problems)} problem(s)", problems) from None


def _database_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error]
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        errors.append(psycopg.Error)
    return tuple(errors)


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI ``parameters`` for a query model (the router parses them itself)."""
    schema = model.model_json_schema(by_alias=False)
    out = []
    for name, field in model.model_fields.items():
        alias = {"start": "from", "end": "to"}.get(name, name)
        prop = dict(schema["properties"][name])
        description = prop.pop("description", None) or field.description or ""
        out.append(
            {
                "name": alias,
                "in": "query",
                "required": field.is_required(),
                "schema": prop,
                "description": description,
            }
        )
    return out


_ERRORS = {
    400: "body not JSON, or a bad query parameter; errors name it",
    401: "missing, unknown or revoked API key",
    403: "the key may use only its own gateway",
    413: "body too large",
    422: "the request or event does not fit its model; errors name each field",
    503: "storage unavailable; retry later",
}


def _responses(ok: type[BaseModel], *codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {200: {"model": ok, "description": "the result"}}
    out.update({code: {"model": AnalyticsErrorBody, "description": _ERRORS[code]} for code in codes})
    return out


def _body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def analytics_router(
    get_connection: GetConnection,
    *,
    authenticate: Authenticate | None = None,
    get_write_connection: GetConnection | None = None,
) -> APIRouter:
    """The analytics and event-ingest endpoints over the database ``get_connection`` gives (module docstring).

    ``get_write_connection``, when given, is used for storing posted events instead of ``get_connection``
    (SQLite: the store's single writer, while analytics read on their own connection).
    """
    router = APIRouter()

    @contextmanager
    def connection(write: bool = False) -> Iterator[tuple[Connection, Dialect]]:
        got = (get_write_connection or get_connection)() if write else get_connection()
        if isinstance(got, tuple):
            yield got[0], check_dialect(got[1])
            return
        with got as pair:
            yield pair[0], check_dialect(pair[1])

    def key_gateway(request: Request) -> str | None:
        """The gateway the request's key is bound to (``None``: any); the key is checked first of all."""
        if authenticate is None:
            return None
        bound = getattr(authenticate(request.headers.get(API_KEY_HEADER)), "gateway", None)
        return None if bound is None else str(bound)

    def scope(bound: str | None, requested: str | None) -> str | None:
        if bound is None or requested in (None, bound):
            return bound if bound is not None else requested
        raise _Refused(403, f"this API key may use only gateway {bound!r}")

    async def body_json(request: Request, limit: int) -> Any:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Refused(413, f"body larger than {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Refused(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise _Refused(400, f"body is not JSON: {exc}") from None

    def run(compute: Callable[[Connection, Dialect], M], write: bool = False) -> M:
        try:
            with connection(write) as (conn, dialect):
                return compute(conn, dialect)
        except _database_errors() as exc:
            log.error("analytics query failed: %s", exc)
            raise _Refused(503, "storage unavailable, retry later") from None

    def respond(result: BaseModel) -> Response:
        return _json(result.model_dump(mode="json", by_alias=True))

    async def answer(request: Request, work: Callable[[], Response]) -> Response:
        try:
            return await run_in_threadpool(work)
        except _Refused as exc:
            return _refusal(exc)

    @router.post(
        "/api/v1/analytics/funnel",
        summary="Entities through ordered steps: counts, conversion, drop-off, time between steps",
        tags=["analytics"],
        response_model=None,
        responses=_responses(FunnelResponse, 400, 401, 403, 422, 503),
        openapi_extra=_body(FunnelRequest),
    )
    async def post_funnel(request: Request) -> Response:
        bound = await run_in_threadpool(key_gateway, request)
        try:
            data = await body_json(request, MAX_REQUEST_BYTES)
        except _Refused as exc:
            return _refusal(exc)

        def work() -> Response:
            req = _parse(FunnelRequest, data, 422, "funnel request")
            req = req.model_copy(update={"gateway": scope(bound, req.gateway)})
            return respond(run(lambda conn, dialect: sql_funnel(conn, dialect, req)))

        return await answer(request, work)

    @router.post(
        "/api/v1/analytics/cohort",
        summary="Cohort matrix: entities by period of their first event vs return events in later periods",
        tags=["analytics"],
        response_model=None,
        responses=_responses(CohortResponse, 400, 401, 403, 422, 503),
        openapi_extra=_body(CohortRequest),
    )
    async def post_cohort(request: Request) -> Response:
        bound = await run_in_threadpool(key_gateway, request)
        try:
            data = await body_json(request, MAX_REQUEST_BYTES)
        except _Refused as exc:
            return _refusal(exc)

        def work() -> Response:
            req = _parse(CohortRequest, data, 422, "cohort request")
            req = req.model_copy(update={"gateway": scope(bound, req.gateway)})
            return respond(run(lambda conn, dialect: sql_cohort(conn, dialect, req)))

        return await answer(request, work)

    @router.get(
        "/api/v1/analytics/segments",
        summary="Devices clustered by behaviour into named, explained segments",
        tags=["analytics"],
        response_model=None,
        responses=_responses(SegmentsResponse, 400, 401, 403, 503),
        openapi_extra={"parameters": _query_parameters(SegmentsQuery)},
    )
    async def get_segments(request: Request) -> Response:
        params = dict(request.query_params)

        def work() -> Response:
            bound = key_gateway(request)
            query = _parse(SegmentsQuery, params, 400, "query parameter(s)")
            query = query.model_copy(update={"gateway": scope(bound, query.gateway)})
            return respond(run(lambda conn, dialect: sql_segments(conn, dialect, query)))

        return await answer(request, work)

    @router.get(
        "/api/v1/analytics/overview",
        summary="The fleet at a glance: gateways, device states, OEE, losses, alarm KPIs, sync backlog",
        tags=["analytics"],
        response_model=None,
        responses=_responses(OverviewResponse, 400, 401, 403, 503),
        openapi_extra={"parameters": _query_parameters(OverviewQuery)},
    )
    async def get_overview(request: Request) -> Response:
        params = dict(request.query_params)

        def work() -> Response:
            bound = key_gateway(request)
            query = _parse(OverviewQuery, params, 400, "query parameter(s)")
            query = query.model_copy(update={"gateway": scope(bound, query.gateway)})
            return respond(run(lambda conn, dialect: sql_overview(conn, dialect, query)))

        return await answer(request, work)

    def store(bound: str | None, items: list[Any]) -> EventsAccepted:
        checked: Checked = check_events(items, bound)
        envelopes: list[EventEnvelope] = [e for _, e in checked.accepted]

        def compute(conn: Connection, dialect: Dialect) -> EventsAccepted:
            fresh = insert_events(conn, dialect, envelopes) if envelopes else []
            return EventsAccepted(
                accepted=sum(fresh),
                duplicates=len(fresh) - sum(fresh),
                rejected=checked.rejected,
                ids=[e.id for e in envelopes],
            )

        return run(compute, write=True)

    @router.post(
        "/api/v1/events",
        summary="Store one event from another system (MES, quality station, operator app)",
        tags=["events"],
        response_model=None,
        responses=_responses(EventsAccepted, 400, 401, 403, 422, 503),
        openapi_extra=_body(EventEnvelope),
    )
    async def post_event(request: Request) -> Response:
        bound = await run_in_threadpool(key_gateway, request)
        try:
            data = await body_json(request, MAX_REQUEST_BYTES)
        except _Refused as exc:
            return _refusal(exc)

        def work() -> Response:
            result = store(bound, [data])
            if result.rejected:
                errors = [p.model_dump() for p in result.rejected[0].errors]
                raise _Refused(422, f"invalid event: {len(errors)} problem(s)", errors)
            return respond(result)

        return await answer(request, work)

    @router.post(
        "/api/v1/events/batch",
        summary="Store events one by one: bad ones are rejected with the reason, good ones kept",
        tags=["events"],
        response_model=None,
        responses=_responses(EventsAccepted, 400, 401, 403, 422, 503),
        openapi_extra=_body(EventsBatchRequest),
    )
    async def post_events(request: Request) -> Response:
        bound = await run_in_threadpool(key_gateway, request)
        try:
            data = await body_json(request, MAX_BATCH_BYTES)
        except _Refused as exc:
            return _refusal(exc)

        def work() -> Response:
            batch = _parse(EventsBatchRequest, data, 422, "batch")
            return respond(store(bound, batch.events))

        return await answer(request, work)

    return router
