"""``edge-collector keys add|list|revoke``: the API keys stored in the collector's database.

``add`` prints the new key once, on stdout (and nothing else there, so it can
be captured); the database keeps only its salted digest. ``list`` never prints
keys: id, gateway, created, revoked, note. ``revoke`` is immediate for every
collector on the database; revoking twice keeps the first time.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from cloud_sync.collector.keys import new_key
from cloud_sync.collector.store import Store, StoreError, display_url, open_store

DB_HELP = "database URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME"
MAX_NOTE = 200
_GATEWAY_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class UsageError(Exception):
    """Bad command-line input; reported on stderr with exit code 2."""


def valid_gateway_id(value: str) -> bool:
    """Whether ``value`` is a gateway id the wire schema accepts."""
    return bool(_GATEWAY_ID.match(value))


def add_parser(sub: Any) -> None:
    """Add ``keys`` and its subcommands to the ``edge-collector`` subparsers ``sub``."""
    keys = sub.add_parser("keys", help="manage the API keys stored in the database")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    add = actions.add_parser("add", help="create a key for one gateway and print it (once)")
    add.add_argument("--db", required=True, help=DB_HELP)
    add.add_argument("--gateway", required=True, metavar="GATEWAY_ID", help="the only gateway the key may write as")
    add.add_argument("--note", default="", help="free text shown by 'keys list' (who, where, why)")
    listing = actions.add_parser("list", help="show the stored keys (never the keys themselves)")
    listing.add_argument("--db", required=True, help=DB_HELP)
    revoke = actions.add_parser("revoke", help="revoke a key, at once, for every collector on the database")
    revoke.add_argument("--db", required=True, help=DB_HELP)
    revoke.add_argument("key_id", metavar="KEY_ID", help="the id shown by 'keys add' and 'keys list'")


def run(args: argparse.Namespace) -> int:
    """Run one ``keys`` subcommand; returns the exit code."""
    if args.keys_command == "add":
        if not valid_gateway_id(args.gateway):
            raise UsageError(f"invalid gateway id {args.gateway!r}: 1-128 of A-Z a-z 0-9 _ . -")
        if len(args.note) > MAX_NOTE or any(ord(c) < 32 for c in args.note):
            raise UsageError(f"--note must be one line of at most {MAX_NOTE} characters")
    try:
        store = open_store(args.db, pool_size=1)
    except StoreError as exc:
        print(f"edge-collector: cannot open database {display_url(args.db)}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.keys_command == "add":
            return _add(store, args.gateway, args.note)
        if args.keys_command == "list":
            return _list(store)
        return _revoke(store, args.key_id)
    except StoreError as exc:
        print(f"edge-collector: database {display_url(args.db)}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _add(store: Store, gateway: str, note: str) -> int:
    key, record = new_key(gateway, note)
    store.add_key(record)
    print(key)
    print(
        f"created key {record.key_id} for gateway {gateway}; it is shown only this once, "
        "the database keeps only its hash",
        file=sys.stderr,
    )
    return 0


def _list(store: Store) -> int:
    rows = [("KEY_ID", "GATEWAY", "CREATED", "REVOKED", "NOTE")]
    for k in store.list_keys():
        revoked = _iso(k.revoked_at) if k.revoked_at is not None else "-"
        rows.append((k.key_id, k.gateway_id, _iso(k.created_at), revoked, k.note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4]).rstrip())
    return 0


def _revoke(store: Store, key_id: str) -> int:
    before = store.get_key(key_id)
    record = store.revoke_key(key_id, time.time())
    if record is None or record.revoked_at is None:
        print(f"edge-collector: no key with id {key_id!r} (see 'edge-collector keys list')", file=sys.stderr)
        return 1
    if before is not None and before.revoked_at is not None:
        print(f"key {key_id} (gateway {record.gateway_id}) was already revoked at {_iso(record.revoked_at)}")
    else:
        print(f"revoked key {key_id} (gateway {record.gateway_id})")
    return 0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
