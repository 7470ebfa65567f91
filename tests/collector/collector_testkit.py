"""Batch builders, storage backends and a collector subprocess, shared by the collector tests."""

from __future__ import annotations

import gzip
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from cloud_sync.collector.store import Store, open_store
from cloud_sync.schema import Batch, batch_id

ROOT = Path(__file__).resolve().parents[2]
ANY_KEY = "key-any"
BOUND_KEY = "key-gw1"
KEYS: dict[str, str | None] = {ANY_KEY: None, BOUND_KEY: "gw1"}
TABLES = (
    "batches",
    "samples",
    "events",
    "gateways",
    "api_keys",
    "device_twins",
    "device_twin_tags",
    "device_twin_derived",
)


def sample_rows(first: int, last: int) -> list[list[Any]]:
    """Rows ``first..last`` of the samples stream with mixed value types."""
    values: list[Any] = [1.5, 7, "open", True, None]
    return [
        [seq, "pump-1", f"t{seq % 3}", 1763798400.0 + seq, values[seq % len(values)], seq % 3]
        for seq in range(first, last + 1)
    ]


def event_rows(first: int, last: int) -> list[list[Any]]:
    return [
        [seq, f"ev-{seq}", 1763798400.0 + seq, "pump-1", "alarm", {"limit": 80.5, "tags": ["a", "b"]}]
        for seq in range(first, last + 1)
    ]


def batch_dict(
    gateway: str = "gw1",
    first: int = 1,
    last: int = 10,
    stream: str = "samples",
    rows: list[list[Any]] | None = None,
) -> dict[str, Any]:
    """A valid batch as the gateway sends it (before gzip)."""
    if rows is None:
        rows = sample_rows(first, last) if stream == "samples" else event_rows(first, last)
    return {
        "schema_version": 1,
        "gateway_id": gateway,
        "batch_id": batch_id(gateway, stream, first, last),
        "stream": stream,
        "first_seq": first,
        "last_seq": last,
        "sent_at": 1763798500.25,
        "backlog": {"samples": 5, "events": 0},
        "rows": rows,
    }


def make_batch(**kwargs: Any) -> Batch:
    return Batch.model_validate(batch_dict(**kwargs))


def gz(obj: Any) -> bytes:
    return gzip.compress(orjson.dumps(obj), compresslevel=1)


def headers(key: str | None = ANY_KEY, encoding: str | None = "gzip") -> dict[str, str]:
    out = {"content-type": "application/json"}
    if key is not None:
        out["x-api-key"] = key
    if encoding is not None:
        out["content-encoding"] = encoding
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- storage backends -----------------------------------------------------------------------------


@dataclass
class Backend:
    """One database the tests run against: how to open it and read it behind the store's back."""

    name: str
    url: str

    def open(self) -> Store:
        return open_store(self.url)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``?`` placeholders) on an independent connection: what it sees is committed."""
        raise NotImplementedError

    def execute(self, sql: str, *params: Any) -> None:
        raise NotImplementedError

    def row_counts(self) -> dict[str, int]:
        return {table: self.query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in TABLES}


class SQLiteBackend(Backend):
    def __init__(self, path: Path) -> None:
        super().__init__("sqlite", f"sqlite:///{path}")
        self.path = path

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import sqlite3

        conn = sqlite3.connect(self.path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def execute(self, sql: str, *params: Any) -> None:
        import sqlite3

        conn = sqlite3.connect(self.path)
        try:
            conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()


class PostgresBackend(Backend):
    def __init__(self, base_url: str, schema: str) -> None:
        sep = "&" if "?" in base_url else "?"
        super().__init__("postgresql", f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}")
        self.schema = schema

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()

    def execute(self, sql: str, *params: Any) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)


class PgSchemas:
    """Uniquely named PostgreSQL schemas for one test session, all dropped at its end."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.prefix = f"edge_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.created: list[str] = []

    def create(self) -> PostgresBackend:
        import psycopg

        schema = f"{self.prefix}_{len(self.created)}"
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        self.created.append(schema)
        return PostgresBackend(self.base_url, schema)

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.base_url, autocommit=True) as conn:
            for schema in self.created:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.created.clear()


# -- a collector process --------------------------------------------------------------------------


class CollectorProcess:
    """``python -m cloud_sync.collector serve`` as a child process on a free port."""

    def __init__(self, db_url: str, *args: str, keys_env: str = "", port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "EDGE_COLLECTOR_API_KEYS": keys_env, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "cloud_sync.collector", "serve", "--db", db_url]
        cmd += ["--listen", f"127.0.0.1:{self.port}", *args]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def wait_ready(self, timeout: float = 20.0) -> CollectorProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                raise AssertionError(f"collector exited early:\n{out}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("collector did not become healthy")

    def stop(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=15)
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
