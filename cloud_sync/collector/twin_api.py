"""The latest twin of the fleet's devices: ``/api/v1/gateways/{gateway}/devices[/{device}/twin]``.

The twin tables are kept at ingest (:mod:`cloud_sync.collector.twin`); these
endpoints only read them. Same key rules as the other data endpoints: a key
bound to a gateway reads only that gateway (403 for another), 404 names the
unknown gateway or device.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Security
from fastapi.responses import Response

from cloud_sync.collector import params
from cloud_sync.collector.api_models import Devices, DeviceTwin
from cloud_sync.collector.body import Rejected
from cloud_sync.collector.context import Collector, api_key_scheme, collector_of, json_response
from cloud_sync.collector.query_api import error_responses, readable_gateway
from cloud_sync.collector.store import NotFound

router = APIRouter()
"""The twin endpoints; built once per process and shared by every app (see :func:`.app.create_app`)."""

_GATEWAY = Path(description="gateway id", min_length=1, max_length=params.MAX_NAME)
_DEVICE = Path(description="device name", min_length=1, max_length=params.MAX_NAME)


def _gateway(collector: Collector, api_key: str | None, gateway: str) -> str:
    identity = collector.authenticate(api_key)
    name = params.parse_name("gateway", gateway)
    allowed = readable_gateway(identity, name)
    assert allowed is not None
    return allowed


@router.get(
    "/api/v1/gateways/{gateway}/devices",
    summary="The devices of a gateway: state, connection, active alarms, last seen",
    tags=["twin"],
    response_model=Devices,
    responses=error_responses(400, 401, 403, 404, 503),
)
def get_devices(
    request: Request, api_key: str | None = Security(api_key_scheme), gateway: str = _GATEWAY
) -> Response:
    collector = collector_of(request)
    gw = _gateway(collector, api_key, gateway)
    try:
        devices = collector.call_store(collector.store.devices, gw)
    except NotFound as exc:
        raise Rejected(404, str(exc)) from None
    return json_response({"gateway_id": gw, "devices": devices})


@router.get(
    "/api/v1/gateways/{gateway}/devices/{device}/twin",
    summary="The latest twin of a device: reported values per tag and derived figures",
    tags=["twin"],
    response_model=DeviceTwin,
    responses=error_responses(400, 401, 403, 404, 503),
)
def get_twin(
    request: Request,
    api_key: str | None = Security(api_key_scheme),
    gateway: str = _GATEWAY,
    device: str = _DEVICE,
) -> Response:
    collector = collector_of(request)
    gw = _gateway(collector, api_key, gateway)
    name = params.parse_name("device", device)
    assert name is not None
    try:
        twin = collector.call_store(collector.store.device_twin, gw, name)
    except NotFound as exc:
        raise Rejected(404, str(exc)) from None
    return json_response(twin)
