"""``edge-collector``: run the central collector and manage its API keys.

::

    edge-collector serve --db sqlite:///var/lib/edge-collector/collector.db \\
        --listen 0.0.0.0:8090 --api-key SECRET1 --api-key SECRET2=plant-a-gw1
    edge-collector serve --db postgresql://collector@db.example:5432/collector
    edge-collector keys add --db URL --gateway plant-a-gw1 [--note TEXT]
    edge-collector keys list --db URL
    edge-collector keys revoke --db URL KEY_ID

Keys made with ``keys add`` are stored (hashed) in the database, bound to one
gateway, and work in every collector process on that database; ``keys revoke``
takes effect at once. ``--api-key`` adds keys held in memory for this process
only (demos, tests), repeatable: ``KEY`` may send for any gateway,
``KEY=GATEWAY_ID`` only for that gateway. ``EDGE_COLLECTOR_API_KEYS`` adds keys
in the same syntax, comma separated (prefer it to the command line, which other
local users can read). A key that itself ends in ``=`` (base64 padding) is
taken whole. ``serve`` refuses to start with no key at all.

Exit codes: 0 done (``serve``: stopped by SIGINT/SIGTERM), 1 could not start or
the database failed (``keys revoke``: unknown key), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterable, Sequence
from types import FrameType
from typing import Any

import uvicorn

from cloud_sync.collector import keys_cli
from cloud_sync.collector.app import DEFAULT_RATE_LIMIT, create_app
from cloud_sync.collector.keys_cli import DB_HELP, UsageError, valid_gateway_id
from cloud_sync.collector.store import (
    StoreError,
    UnsupportedBackend,
    display_url,
    is_postgres_url,
    open_store,
    sqlite_path,
)

log = logging.getLogger("cloud_sync.collector")

ENV_API_KEYS = "EDGE_COLLECTOR_API_KEYS"
DEFAULT_LISTEN = "127.0.0.1:8090"
_NO_KEY = (
    "refusing to start without an API key: add one with 'edge-collector keys add --db URL --gateway ID', "
    f"or pass --api-key KEY or set ${ENV_API_KEYS}"
)


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
            if not valid_gateway_id(gateway_id):
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
    serve.add_argument("--db", required=True, help=DB_HELP)
    serve.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT (default {DEFAULT_LISTEN})")
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY[=GATEWAY_ID]",
        help=f"an API key held in memory, repeatable; also ${ENV_API_KEYS} (comma separated)",
    )
    serve.add_argument(
        "--rate-limit-batches-per-s",
        type=float,
        default=DEFAULT_RATE_LIMIT,
        metavar="R",
        help=f"batches per second per gateway, in this process; 0 disables (default {DEFAULT_RATE_LIMIT:g})",
    )
    serve.add_argument(
        "--rate-limit-burst", type=float, default=None, metavar="N", help="batches at once (default 2 x R)"
    )
    serve.add_argument(
        "--synchronous",
        choices=("normal", "full"),
        default="normal",
        help="SQLite durability: normal (default, survives process crashes) or full (also power loss)",
    )
    serve.add_argument("--db-pool-size", type=int, default=8, metavar="N", help="PostgreSQL connections (default 8)")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    keys_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``edge-collector``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "keys":
            return keys_cli.run(args)
        return _serve(args)
    except (UsageError, UnsupportedBackend) as exc:
        print(f"edge-collector: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    env_keys = os.environ.get(ENV_API_KEYS, "").split(",")
    api_keys = parse_api_keys([*args.api_key, *env_keys])
    host, port = parse_listen(args.listen)
    if args.rate_limit_batches_per_s < 0 or (args.rate_limit_burst is not None and args.rate_limit_burst < 1):
        raise UsageError("--rate-limit-batches-per-s must be >= 0 and --rate-limit-burst >= 1")
    if not is_postgres_url(args.db) and not api_keys and not sqlite_path(args.db).exists():
        raise UsageError(_NO_KEY)  # a new file cannot hold keys: refuse before creating it

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = _StopSignals()
    try:
        store = open_store(args.db, synchronous=args.synchronous, pool_size=args.db_pool_size)
    except StoreError as exc:
        print(f"edge-collector: cannot open database {display_url(args.db)}: {exc}", file=sys.stderr)
        stop.restore()
        return 1
    try:
        stored_keys = sum(1 for k in store.list_keys() if k.revoked_at is None)
        if not api_keys and not stored_keys:
            raise UsageError(_NO_KEY)
        log.info(
            "database %s, %d stored API key(s), %d given on the command line",
            display_url(args.db),
            stored_keys,
            len(api_keys),
        )
        app = create_app(store, api_keys, rate_limit=args.rate_limit_batches_per_s, rate_burst=args.rate_limit_burst)
        config = uvicorn.Config(
            app, host=host, port=port, log_level=args.log_level, lifespan="off", server_header=False
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
    except StoreError as exc:
        print(f"edge-collector: database {display_url(args.db)}: {exc}", file=sys.stderr)
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
