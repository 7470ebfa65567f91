"""The fleet page: ``GET /`` and its assets under ``/static/fleet/``, all served from the package (no CDN).

The page is plain HTML, CSS and JavaScript (no build step). It holds no data
itself: it reads the analytics API (``/api/v1/analytics/overview``, ``funnel``,
``cohort``, ``segments``) from the browser with an API key, so the page and its
assets are open and the data stays behind the collector's key check.

The key is entered once on the page and kept in the browser's ``localStorage``;
a link may carry it in its fragment (``/#key=ek_...``), which browsers never send
to a server; the page stores it and removes it from the address bar.
``?from=...&to=...`` (ISO 8601 or epoch seconds) fix the window of a link.

Assets are read once, when the router is built; only the files of the folder are
served (no path from the request reaches the file system).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

__all__ = ["ASSET_PREFIX", "fleet_router"]

ASSET_PREFIX = "/static/fleet"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_HEADERS = {
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_PAGE_HEADERS = {
    **_HEADERS,
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


@cache
def _assets() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("cloud_sync.collector") / "static" / "fleet"
    out = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in _TYPES:
            out[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return out


def fleet_router() -> APIRouter:
    """``GET /`` (the page) and ``GET /static/fleet/{name}`` (its assets)."""
    assets = _assets()
    page, _ = assets["index.html"]
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def fleet_page() -> Response:
        return Response(page, media_type=_TYPES[".html"], headers=_PAGE_HEADERS)

    @router.get(ASSET_PREFIX + "/{name}")
    async def fleet_asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            return Response(b'{"detail":"no such file"}', status_code=404, media_type="application/json")
        body, media_type = found
        return Response(body, media_type=media_type, headers=_HEADERS)

    return router
