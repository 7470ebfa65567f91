"""Benchmark: samples/s the collector ingests over HTTP, against a raw insert baseline of the same run.

For each backend (SQLite in a temporary folder; PostgreSQL in a temporary
schema, when it is reachable) it times

* **HTTP**: the real ``edge-collector serve`` process on a loopback port,
  sent pre-compressed batches of 10,000 samples (gzip level 1 JSON, as the
  agent's uploader sends them) one after the other, each answered after commit:
  decompression, parsing, validation and the exactly-once transaction included;
* **raw**: the same rows inserted by ``executemany`` into a database of the
  same table layout (the collector's migrations: same keys and indexes), one
  transaction per batch, with no HTTP, JSON, validation or duplicate handling,

alternating them batch by batch (so a busy machine slows both alike), and
prints samples/s for both and their ratio (HTTP / raw). On PostgreSQL the
collector loads rows with ``COPY``, which beats ``executemany``; a raw ``COPY``
into the same layout is printed as a second baseline.

``--stages`` profiles where the SQLite collector's time goes instead, in process and
per sample: decompression, JSON parsing, validation, the twin update, the store's
transaction (rows, twin, counters, commit), and raw inserts of the same rows with and
without the ``samples_ts`` index.

    python bench/collector_ingest.py [--batches N] [--batch-size N] [--pg-url URL | --no-pg] [--stages]
"""

from __future__ import annotations

import argparse
import gzip
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import Row, add_json_argument, write_rows
from cloud_sync.collector.store import open_store
from cloud_sync.schema import batch_id

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_PG_URL = os.environ.get("EDGE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
GATEWAY = "bench-gw"
API_KEY = "bench-key"
T0 = 1763798400.0

Rows = list[list[Any]]


def make_rows(first: int, count: int) -> Rows:
    """``count`` samples from ``first`` on: 10 devices x 100 tags at 1 Hz, mostly floats."""
    rows: Rows = []
    for seq in range(first, first + count):
        n = seq - 1
        value: Any = round(20.0 + (n % 997) * 0.01, 2) if n % 10 else n % 7
        rows.append([seq, f"cnc-{n % 10}", f"tag-{n % 100:02d}", T0 + n // 1000, value, 0])
    return rows


def make_body(first: int, rows: Rows) -> bytes:
    last = first + len(rows) - 1
    body = {
        "schema_version": 1,
        "gateway_id": GATEWAY,
        "batch_id": batch_id(GATEWAY, "samples", first, last),
        "stream": "samples",
        "first_seq": first,
        "last_seq": last,
        "sent_at": time.time(),
        "backlog": {"samples": 0, "events": 0},
        "rows": rows,
    }
    return gzip.compress(orjson.dumps(body), compresslevel=1)


# -- databases ------------------------------------------------------------------------------------


@contextmanager
def sqlite_databases(tmp: Path) -> Iterator[Callable[[str], str]]:
    """A factory of new SQLite database URLs under ``tmp``."""
    yield lambda name: f"sqlite:///{tmp / name}.db"


@contextmanager
def pg_databases(base_url: str) -> Iterator[Callable[[str], str]]:
    """A factory of new PostgreSQL schemas (URLs selecting them), all dropped afterwards."""
    import psycopg

    prefix = f"edge_bench_{os.getpid()}_{secrets.token_hex(3)}"
    created: list[str] = []

    def new(name: str) -> str:
        schema = f"{prefix}_{name}"
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        created.append(schema)
        sep = "&" if "?" in base_url else "?"
        return f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"

    try:
        yield new
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            for schema in created:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# -- the measurements -----------------------------------------------------------------------------
# Each inserter takes one batch and returns the seconds it took; main() alternates them batch by batch,
# so that a busy machine slows all of them alike.

Inserter = Callable[[int], float]
INSERT_SQL = "INSERT INTO samples (gateway_id, seq, device, tag, ts, value, quality) VALUES "


@contextmanager
def raw_executemany(url: str, batches: list[Rows]) -> Iterator[Inserter]:
    """executemany into the collector's layout, one transaction per batch."""
    open_store(url).close()  # the collector's schema: same tables, keys and indexes
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")

        def insert_sqlite(i: int) -> float:
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_SQL + "(?, ?, ?, ?, ?, ?, ?)", [(GATEWAY, *row) for row in batches[i]])
            conn.execute("COMMIT")
            return time.perf_counter() - started

        try:
            yield insert_sqlite
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg:

        def insert_pg(i: int) -> float:
            started = time.perf_counter()
            with pg.cursor() as cur:
                cur.executemany(
                    INSERT_SQL + "(%s, %s, %s, %s, %s, %s::jsonb, %s)",
                    [(GATEWAY, s, d, t, ts, orjson.dumps(v).decode(), q) for s, d, t, ts, v, q in batches[i]],
                )
            pg.commit()
            return time.perf_counter() - started

        yield insert_pg


@contextmanager
def raw_copy(url: str, batches: list[Rows]) -> Iterator[Inserter]:
    """PostgreSQL's COPY (the fastest raw way) into the collector's layout, one transaction per batch."""
    import psycopg

    open_store(url).close()
    with psycopg.connect(url) as pg:

        def insert(i: int) -> float:
            started = time.perf_counter()
            with (
                pg.cursor() as cur,
                cur.copy("COPY samples (gateway_id, seq, device, tag, ts, value, quality) FROM STDIN") as copy,
            ):
                for s, d, t, ts, v, q in batches[i]:
                    copy.write_row((GATEWAY, s, d, t, ts, orjson.dumps(v).decode(), q))
            pg.commit()
            return time.perf_counter() - started

        yield insert


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_collector(url: str, bodies: list[bytes], rows_per_batch: int) -> Iterator[Inserter]:
    """The real collector process; each call POSTs one body and waits for its acknowledgement."""
    port = free_port()
    cmd = [sys.executable, "-m", "cloud_sync.collector", "serve", "--db", url, "--listen", f"127.0.0.1:{port}"]
    cmd += ["--api-key", API_KEY, "--rate-limit-batches-per-s", "0", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    headers = {"x-api-key": API_KEY, "content-type": "application/json", "content-encoding": "gzip"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"collector on {url} did not start")
                time.sleep(0.05)
            warmup = make_body(10**9, make_rows(10**9, 100))
            client.post("/api/v1/batches", content=warmup, headers=headers).raise_for_status()

            def post(i: int) -> float:
                started = time.perf_counter()
                r = client.post("/api/v1/batches", content=bodies[i], headers=headers)
                elapsed = time.perf_counter() - started
                if r.status_code != 200 or r.json()["accepted"] != rows_per_batch:
                    raise SystemExit(f"unexpected answer {r.status_code}: {r.text[:200]}")
                return elapsed

            yield post
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(name: str, new_url: Callable[[str], str], batches: list[Rows], bodies: list[bytes]) -> dict[str, float]:
    """Seconds per way of inserting, alternating them batch by batch."""
    with ExitStack() as stack:
        ways = {
            "http": stack.enter_context(http_collector(new_url("http"), bodies, len(batches[0]))),
            "raw": stack.enter_context(raw_executemany(new_url("raw"), batches)),
        }
        if name == "postgresql":
            ways["copy"] = stack.enter_context(raw_copy(new_url("copy"), batches))
        seconds = dict.fromkeys(ways, 0.0)
        for i in range(len(batches)):
            for way, insert in ways.items():
                seconds[way] += insert(i)
    return seconds


def stages(batches: list[Rows], bodies: list[bytes], repeat: int = 3) -> dict[str, float]:
    """Microseconds per sample of each step of a SQLite ingest (in process, fastest of ``repeat``)."""
    from cloud_sync.collector import twin
    from cloud_sync.collector.body import decode_body, gunzip_limited
    from cloud_sync.collector.validation import parse_batch

    total = sum(map(len, batches))
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds / total * 1e6)

    for rep in range(repeat):
        with tempfile.TemporaryDirectory(prefix="collector-stages-") as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 'stages.sqlite'}")
            steps = dict.fromkeys(("gunzip", "json", "validate", "twin", "store transaction"), 0.0)
            for body in bodies:
                t0 = time.perf_counter()
                raw = gunzip_limited(body)
                t1 = time.perf_counter()
                data = orjson.loads(raw)
                t2 = time.perf_counter()
                batch = parse_batch(data)
                t3 = time.perf_counter()
                twin.from_samples(batch.rows)
                t4 = time.perf_counter()
                store.ingest(batch)
                t5 = time.perf_counter()
                for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                    steps[name] += seconds
            store.close()
            for name, seconds in steps.items():
                keep(name, seconds)
            started = time.perf_counter()
            for body in bodies:
                decode_body(body, "gzip")
            keep("decode_body (gunzip + json)", time.perf_counter() - started)
            for label, drop_index in (("raw insert, same layout", False), ("raw insert, no samples_ts index", True)):
                url = f"sqlite:///{Path(tmp) / f'raw-{drop_index}.sqlite'}"
                open_store(url).close()
                conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA cache_size=-65536")
                if drop_index:
                    conn.execute("DROP INDEX samples_ts")
                started = time.perf_counter()
                for rows in batches:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(INSERT_SQL + "(?, ?, ?, ?, ?, ?, ?)", [(GATEWAY, *row) for row in rows])
                    conn.execute("COMMIT")
                keep(label, time.perf_counter() - started)
                conn.close()
        print(f"  stages pass {rep + 1}/{repeat} done", file=sys.stderr)
    return best


# -- main -------------------------------------------------------------------------------------------


def pg_reachable(url: str) -> str | None:
    """``None`` if PostgreSQL at ``url`` can be used, else why not."""
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # any reason to skip it is reported, not raised
        return str(exc).strip().splitlines()[0]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="batches per measurement (default 20)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="samples per batch (default 10000)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (a temporary schema is used)")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--stages", action="store_true", help="profile the SQLite ingest step by step instead")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    batches = [make_rows(1 + i * args.batch_size, args.batch_size) for i in range(args.batches)]
    bodies = [make_body(rows[0][0], rows) for rows in batches]
    if args.stages:
        per_sample = stages(batches, bodies)
        print(f"SQLite collector ingest, {args.batches} batches x {args.batch_size} samples, us per sample "
              "(fastest of 3):")
        for name, us in per_sample.items():
            print(f"  {name:<34} {us:6.2f} us  ({1e6 / us:>10,.0f} samples/s)")
        return 0
    total = args.batches * args.batch_size
    wire = sum(map(len, bodies)) / total
    print(f"{args.batches} batches x {args.batch_size} samples, {wire:.1f} bytes/sample on the wire (gzip-1 JSON)")
    print(f"{'backend':<11} {'HTTP samples/s':>15} {'raw samples/s':>15} {'ratio':>6}")

    rows: list[Row] = []
    backends: list[tuple[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="collector-bench-") as tmp:
        backends.append(("sqlite", sqlite_databases(Path(tmp))))
        if not args.no_pg:
            if (why := pg_reachable(args.pg_url)) is None:
                backends.append(("postgresql", pg_databases(args.pg_url)))
            else:
                print(f"postgresql: skipped ({why})")
        for name, databases in backends:
            with databases as new_url:
                seconds = measure(name, new_url, batches, bodies)
            http_rate, raw_rate = total / seconds["http"], total / seconds["raw"]
            print(f"{name:<11} {http_rate:>15,.0f} {raw_rate:>15,.0f} {http_rate / raw_rate:>6.2f}")
            rows.append(Row(f"collector ingest, {name}", f"HTTP batches of {args.batch_size:,} samples, answered "
                            "after commit", round(http_rate), "samples/s", round(raw_rate),
                            "samples/s (raw executemany, same layout)", round(http_rate / raw_rate, 2)))
            if "copy" in seconds:
                copy_rate = total / seconds["copy"]
                print(f"{'  raw COPY':<11} {'':>15} {copy_rate:>15,.0f} {http_rate / copy_rate:>6.2f}")
                rows.append(Row(f"collector ingest, {name} vs COPY", "HTTP batches vs a raw COPY baseline",
                                round(http_rate), "samples/s", round(copy_rate), "samples/s (raw COPY)",
                                round(http_rate / copy_rate, 2)))
    write_rows(args.json, rows, extra={"wire_bytes_per_sample": round(wire, 2)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
