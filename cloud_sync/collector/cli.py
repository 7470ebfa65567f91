"""``edge-collector``: run the central collector.

::

    edge-collector serve --db sqlite:///var/lib/edge-collector/collector.db \\
        --listen 0.0.0.0:8090 --api-key SECRET1 --api-key SECRET2=plant-a-gw1

``--api-key`` is repeatable: ``KEY`` may send for any gateway, ``KEY=GATEWAY_ID``
only for that gateway. ``EDGE_COLLECTOR_API_KEYS`` adds keys in the same
syntax, comma separated (prefer it to the command line, which other local
users can read). A key that itself ends in ``=`` (base64 padding) is taken
whole. Exit codes: 0 stopped by SIGINT/SIGTERM, 1 could not start, 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Iterable, Sequence
from types import FrameType
from typing import Any

import uvicorn

from cloud_sync.collector.app import create_app
from cloud_sync.collector.store import StoreError, UnsupportedBackend, open_store, sqlite_path

log = logging.getLogger("cloud_sync.collector")

ENV_API_KEYS = "EDGE_COLLECTOR_API_KEYS"
DEFAULT_LISTEN = "127.0.0.1:8090"
_GATEWAY_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class UsageError(Exception):
    """Bad command-line input; reported on stderr with exit code 2."""


def parse_api_keys(entries: Iterable[str]) -> dict[str, str | None]:
    """``KEY`` / ``KEY=GATEWAY_ID`` entries to the mapping :func:`create_app` takes."""
    keys: dict[str, str | None] = {}
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        key, sep, gateway = entry.rpartition("=")
        if not sep or not gateway:  # no '=' at all, or trailing '=' padding: the whole entry is the key
            key, gateway_id = entry, None
        else:
            key, gateway_id = key.strip(), gateway.strip()
            if not key:
                raise UsageError(f"API key entry '={gateway}' has an empty key")
            if not _GATEWAY_ID.match(gateway_id):
                raise UsageError(f"API key bound to an invalid gateway id {gateway_id!r}")
        if key in keys and keys[key] != gateway_id:
            raise UsageError("the same API key is given twice with different gateways")
        keys[key] = gateway_id
    return keys


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) to ``(host, port)``."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen must be HOST:PORT, got {value!r}")
    return host, int(port)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn server that logs the collector's URL once it is really listening."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            bound = [s.getsockname() for srv in self.servers for s in (srv.sockets or ())]
            host, port = (bound[0][0], bound[0][1]) if bound else (self.config.host, self.config.port)
            log.info("edge-collector listening on %s (POST /api/v1/batches)", _url(host, port))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-collector", description="Central collector for edge gateways.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP collector")
    serve.add_argument("--db", required=True, help="database URL, sqlite:///PATH")
    serve.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT (default {DEFAULT_LISTEN})")
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY[=GATEWAY_ID]",
        help=f"accepted API key, repeatable; also ${ENV_API_KEYS} (comma separated)",
    )
    serve.add_argument(
        "--synchronous",
        choices=("normal", "full"),
        default="normal",
        help="SQLite durability: normal (default, survives process crashes) or full (also power loss)",
    )
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``edge-collector``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _serve(args)
    except UsageError as exc:
        print(f"edge-collector: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    env_keys = os.environ.get(ENV_API_KEYS, "").split(",")
    api_keys = parse_api_keys([*args.api_key, *env_keys])
    if not api_keys:
        raise UsageError(f"refusing to start without an API key: pass --api-key KEY or set ${ENV_API_KEYS}")
    host, port = parse_listen(args.listen)
    try:
        path = sqlite_path(args.db)
    except UnsupportedBackend as exc:
        raise UsageError(str(exc)) from None

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = _StopSignals()
    try:
        store = open_store(args.db, synchronous=args.synchronous)
    except (StoreError, OSError) as exc:
        print(f"edge-collector: cannot open database {path}: {exc}", file=sys.stderr)
        return 1
    try:
        log.info("database %s, %d API key(s)", path, len(api_keys))
        config = uvicorn.Config(
            create_app(store, api_keys),
            host=host,
            port=port,
            log_level=args.log_level,
            lifespan="off",
            server_header=False,
        )
        server = _Server(config)
        stop.server = server
        if stop.received:
            return 0
        try:
            server.run()
        except SystemExit:  # uvicorn exits when it cannot bind; it has logged why
            print(f"edge-collector: cannot listen on {args.listen}", file=sys.stderr)
            return 1
    finally:
        store.close()
        stop.restore()
    log.info("edge-collector stopped")
    return 0


class _StopSignals:
    """SIGINT/SIGTERM handlers that stop the server and let :func:`main` return 0.

    uvicorn installs its own handlers while it runs and re-raises the signal it
    got after shutting down; these handlers absorb that re-raise.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.server: uvicorn.Server | None = None
        self._previous: dict[int, Any] = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        if self.server is not None:
            self.server.should_exit = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
