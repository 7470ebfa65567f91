"""Benchmark: funnel and cohort over N events in SQLite and PostgreSQL, against hand-written SQL.

Fills the collector's ``events`` table (same layout) with N synthetic events --
parts flowing loaded -> machined -> inspected -> packed, devices commissioned
and breaking down, over 70 days and 20 gateways -- then times, in the same run
and on the same table:

* the library: ``sql_funnel`` / ``sql_cohort`` (building the SQL, running it,
  building the response), and
* one hand-written SQL query that computes the same figures (counts and
  median/p90 for the funnel, the cohort cells), as an analyst would write it
  for this one question,

each ``--repeat`` times after a warm-up, keeping the best, and prints one line
per measurement with both times and their ratio (target: at most 1.5). The
answers of the two are compared, so a fast wrong query cannot win.

    python bench/analytics.py [--events 1000000] [--backends sqlite,postgresql] [--repeat 3]
    python bench/analytics.py --events 10000000          # the full run

PostgreSQL is ``--pg-url`` (default ``$EDGE_TEST_POSTGRES_URL`` or the local
server's database ``test``), in a schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_sync.analytics import CohortRequest, FunnelRequest, sql_cohort, sql_funnel
from cloud_sync.analytics.records import period_label
from cloud_sync.analytics.sql import Dialect

START = 1_761_955_200.0  # 2025-11-01T00:00:00Z
DAYS = 70
GATEWAYS = 20
DEVICES = 2000
CHUNK = 200_000
PG_URL = os.environ.get("EDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

FUNNEL = FunnelRequest.model_validate(
    {
        "from": START,
        "to": START + DAYS * 86_400,
        "entity_key": "part_id",
        "max_step_gap_s": 3600,
        "steps": [
            {"kind": "part_loaded"},
            {"kind": "part_machined"},
            {"kind": "part_inspected", "where": {"result": "ok"}},
            {"kind": "part_packed"},
        ],
    }
)
COHORT = CohortRequest.model_validate(
    {
        "from": START,
        "to": START + DAYS * 86_400,
        "entity_key": "device",
        "first": {"kind": "device_connected"},
        "return": {"kind": "stop_ended", "where": {"category": "unplanned_stop"}},
        "period": "week",
        "periods": 10,
        "metric": "share",
    }
)

# -- data ----------------------------------------------------------------------------------------


def generate(n: int, seed: int = 1) -> Iterator[list[tuple[Any, ...]]]:
    """Rows ``(gateway_id, seq, event_id, ts, device, kind, attributes)`` in chunks, ``n`` in all."""
    rng = random.Random(seed)
    seqs = [0] * GATEWAYS
    made = 0
    part = 0
    commissioned = [START + rng.uniform(0, DAYS * 86_400 * 0.8) for _ in range(DEVICES)]
    chunk: list[tuple[Any, ...]] = []

    def add(device: int, ts: float, kind: str, attributes: dict[str, Any]) -> None:
        nonlocal made
        gw = device % GATEWAYS
        seqs[gw] += 1
        row = (f"gw{gw:02d}", seqs[gw], f"{made:032x}", ts, f"m{device:04d}", kind, orjson.dumps(attributes).decode())
        chunk.append(row)
        made += 1
        if made % 10_000 == 0:  # now and then an event stored twice (re-sent under a new sequence number)
            seqs[gw] += 1
            chunk.append((row[0], seqs[gw], *row[2:]))
            made += 1

    while made < n:
        device = rng.randrange(DEVICES)
        roll = rng.random()
        if roll < 0.03:  # connection events: the first of each device is its commissioning
            add(
                device,
                max(commissioned[device], START + rng.uniform(0, DAYS * 86_400)),
                "device_connected",
                {"previous": "disconnected"},
            )
        elif roll < 0.06:  # stops: a quarter of them breakdowns
            category = "unplanned_stop" if rng.random() < 0.25 else "changeover"
            ts = commissioned[device] + rng.uniform(0, DAYS * 86_400)
            add(
                device,
                ts,
                "stop_ended",
                {"started_at": ts - 600, "duration_s": 600.0, "category": category, "reason": "bearing"},
            )
        else:  # a part through the cell
            part += 1
            pid = f"P{part:08d}"
            ts = START + rng.uniform(0, DAYS * 86_400)
            add(device, ts, "part_loaded", {"part_id": pid, "order_id": f"O{part // 50}"})
            if rng.random() < 0.9:
                ts += rng.uniform(30, 600)
                add(device, ts, "part_machined", {"part_id": pid})
                if rng.random() < 0.9:
                    ts += rng.uniform(60, 300)
                    add(
                        device, ts, "part_inspected", {"part_id": pid, "result": "ok" if rng.random() < 0.95 else "nok"}
                    )
                    if rng.random() < 0.95:
                        add(device, ts + rng.uniform(60, 5000), "part_packed", {"part_id": pid})
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- backends --------------------------------------------------------------------------------------

EVENTS_SQLITE = (
    "CREATE TABLE events (gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL, ts REAL NOT NULL, "
    "device TEXT NOT NULL, kind TEXT NOT NULL, attributes TEXT NOT NULL, PRIMARY KEY (gateway_id, seq)) WITHOUT ROWID"
)
EVENTS_PG = (
    "CREATE TABLE events (gateway_id TEXT NOT NULL, seq BIGINT NOT NULL, event_id TEXT NOT NULL, "
    "ts DOUBLE PRECISION NOT NULL, device TEXT NOT NULL, kind TEXT NOT NULL, attributes JSONB NOT NULL, "
    "PRIMARY KEY (gateway_id, seq))"
)


def sqlite_backend(n: int, folder: Path) -> tuple[Any, Callable[[], None]]:
    path = folder / "events.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute(EVENTS_SQLITE)
    insert = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)"
    for chunk in generate(n):
        conn.execute("BEGIN")
        conn.executemany(insert, chunk)
        conn.execute("COMMIT")
    conn.execute("CREATE INDEX events_ts ON events (ts)")
    conn.execute("ANALYZE")
    return conn, conn.close


def postgres_backend(n: int, url: str) -> tuple[Any, Callable[[], None]]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
    schema = f"bench_analytics_{secrets.token_hex(4)}"
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET search_path TO {schema}")
    conn.execute(EVENTS_PG)
    with conn.cursor() as cur:
        for chunk in generate(n):
            with cur.copy("COPY events (gateway_id, seq, event_id, ts, device, kind, attributes) FROM STDIN") as copy:
                for row in chunk:
                    copy.write_row(row)
    conn.execute("CREATE INDEX events_ts ON events (ts)")
    conn.execute("VACUUM ANALYZE events")

    def close() -> None:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()

    return conn, close


# -- the hand-written queries ------------------------------------------------------------------------

_PCT_SQLITE = (
    "(SELECT lo + (h - CAST(h AS INTEGER)) * (hi - lo) FROM (SELECT (n - 1) * {p} AS h, "
    "MAX(CASE WHEN i = CAST((n - 1) * {p} AS INTEGER) THEN d END) AS lo, "
    "MAX(CASE WHEN i = MIN(CAST((n - 1) * {p} AS INTEGER) + 1, n - 1) THEN d END) AS hi FROM {t}))"
)
_REACHED = """
SELECT part, MIN(t1) AS t1, MIN(t2) AS t2, MIN(t3) AS t3, MIN(t4) AS t4 FROM (
 SELECT *, MIN(CASE WHEN kind = 'part_packed' AND ts BETWEEN t3 AND t3 + 3600 THEN ts END)
  OVER (PARTITION BY part) AS t4
 FROM (
  SELECT *, MIN(CASE WHEN kind = 'part_inspected' AND result = 'ok' AND ts BETWEEN t2 AND t2 + 3600 THEN ts END)
   OVER (PARTITION BY part) AS t3
  FROM (
   SELECT *, MIN(CASE WHEN kind = 'part_machined' AND ts BETWEEN t1 AND t1 + 3600 THEN ts END)
    OVER (PARTITION BY part) AS t2
   FROM (
    SELECT *, MIN(CASE WHEN kind = 'part_loaded' THEN ts END) OVER (PARTITION BY part) AS t1
    FROM (SELECT {part} AS part, ts, kind, {result} AS result FROM events
          WHERE ts >= {start} AND ts < {end}
            AND kind IN ('part_loaded', 'part_machined', 'part_inspected', 'part_packed')) e
   ) a WHERE t1 IS NOT NULL
  ) b
 ) c
) d GROUP BY part"""

_JOINS_SQLITE = """
WITH ev AS MATERIALIZED (
  SELECT json_extract(attributes, '$.part_id') AS part, ts, kind, json_extract(attributes, '$.result') AS result
  FROM events WHERE ts >= :start AND ts < :end
   AND kind IN ('part_loaded', 'part_machined', 'part_inspected', 'part_packed')),
s1 AS MATERIALIZED (SELECT part, MIN(ts) AS t FROM ev WHERE kind = 'part_loaded' GROUP BY part),
s2 AS MATERIALIZED (SELECT e.part, MIN(e.ts) AS t FROM ev e JOIN s1 ON s1.part = e.part
  WHERE e.kind = 'part_machined' AND e.ts >= s1.t AND e.ts <= s1.t + 3600 GROUP BY e.part, s1.t),
s3 AS MATERIALIZED (SELECT e.part, MIN(e.ts) AS t FROM ev e JOIN s2 ON s2.part = e.part
  WHERE e.kind = 'part_inspected' AND e.result = 'ok' AND e.ts >= s2.t AND e.ts <= s2.t + 3600 GROUP BY e.part, s2.t),
s4 AS MATERIALIZED (SELECT e.part, MIN(e.ts) AS t FROM ev e JOIN s3 ON s3.part = e.part
  WHERE e.kind = 'part_packed' AND e.ts >= s3.t AND e.ts <= s3.t + 3600 GROUP BY e.part, s3.t),
reached AS MATERIALIZED (SELECT s1.part, s1.t AS t1, s2.t AS t2, s3.t AS t3, s4.t AS t4 FROM s1
  LEFT JOIN s2 ON s2.part = s1.part LEFT JOIN s3 ON s3.part = s1.part LEFT JOIN s4 ON s4.part = s1.part),
"""

HAND_FUNNEL = {
    # SQLite: a join per step (its window functions cost a sort each); PostgreSQL: window functions
    # (its planner misjudges joins of derived tables and loops over them)
    "sqlite": _JOINS_SQLITE
    + ",\n".join(
        f"r{i} AS MATERIALIZED (SELECT t{i} - t{i - 1} AS d, ROW_NUMBER() OVER (ORDER BY t{i} - t{i - 1}) - 1 AS i, "
        f"COUNT(*) OVER () AS n FROM reached WHERE t{i} IS NOT NULL)"
        for i in (2, 3, 4)
    )
    + "\nSELECT 1, COUNT(t1), NULL, NULL FROM reached"
    + "".join(
        f"\nUNION ALL SELECT {i}, (SELECT COUNT(*) FROM r{i}), {_PCT_SQLITE.format(p=0.5, t=f'r{i}')}, "
        f"{_PCT_SQLITE.format(p=0.9, t=f'r{i}')}"
        for i in (2, 3, 4)
    )
    + " ORDER BY 1",
    "postgresql": "WITH reached AS MATERIALIZED ("
    + _REACHED.format(
        part="attributes ->> 'part_id'", result="attributes ->> 'result'", start="%(start)s", end="%(end)s"
    )
    + ")\nSELECT 1, COUNT(t1), NULL::float8, NULL::float8 FROM reached"
    + "".join(
        f"\nUNION ALL SELECT {i}, COUNT(t{i}), percentile_cont(0.5) WITHIN GROUP (ORDER BY t{i} - t{i - 1}), "
        f"percentile_cont(0.9) WITHIN GROUP (ORDER BY t{i} - t{i - 1}) FROM reached"
        for i in (2, 3, 4)
    )
    + " ORDER BY 1",
}

HAND_COHORT = {
    "sqlite": """
WITH f AS (SELECT gateway_id || '/' || device AS dev, MIN(ts) AS t0 FROM events
           WHERE kind = 'device_connected' AND ts < :end GROUP BY 1),
c AS MATERIALIZED (SELECT dev, t0, (CAST(t0 / 86400 AS INTEGER) + 3) / 7 AS w0 FROM f WHERE t0 >= :start),
r AS MATERIALIZED (SELECT gateway_id || '/' || device AS dev, ts FROM events
           WHERE kind = 'stop_ended' AND json_extract(attributes, '$.category') = 'unplanned_stop'
             AND ts >= :start AND ts < :end),
cells AS (SELECT c.w0, (CAST(r.ts / 86400 AS INTEGER) + 3) / 7 - c.w0 AS k, COUNT(DISTINCT r.dev) AS n
          FROM c JOIN r ON r.dev = c.dev AND r.ts >= c.t0 GROUP BY 1, 2)
SELECT w0, -1, COUNT(*) FROM c GROUP BY w0
UNION ALL SELECT w0, k, n FROM cells WHERE k < 10""",
    "postgresql": """
WITH f AS (SELECT gateway_id || '/' || device AS dev, MIN(ts) AS t0 FROM events
           WHERE kind = 'device_connected' AND ts < %(end)s GROUP BY 1),
c AS MATERIALIZED (SELECT dev, t0, (floor(t0 / 86400)::bigint + 3) / 7 AS w0 FROM f WHERE t0 >= %(start)s),
r AS MATERIALIZED (SELECT gateway_id || '/' || device AS dev, ts FROM events
           WHERE kind = 'stop_ended' AND attributes ->> 'category' = 'unplanned_stop'
             AND ts >= %(start)s AND ts < %(end)s),
cells AS (SELECT c.w0, (floor(r.ts / 86400)::bigint + 3) / 7 - c.w0 AS k, COUNT(DISTINCT r.dev) AS n
          FROM c JOIN r ON r.dev = c.dev AND r.ts >= c.t0 GROUP BY 1, 2)
SELECT w0, -1, COUNT(*) FROM c GROUP BY w0
UNION ALL SELECT w0, k, n FROM cells WHERE k < 10""",
}


def hand(conn: Any, dialect: Dialect, sql: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(sql, {"start": FUNNEL.start, "end": FUNNEL.end})
    rows = [tuple(row) for row in cur.fetchall()]
    if dialect == "postgresql" and not conn.autocommit:
        conn.rollback()
    return rows


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    fn()  # warm-up: the page cache, plans
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return min(times), result


def _close(a: float | None, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - float(b)) <= 1e-6 * max(1.0, abs(a))


def measure(conn: Any, dialect: Dialect, n: int, repeat: int) -> list[str]:
    """Time the library and the hand-written query for the funnel and the cohort; one line each."""
    lines = []
    lib_s, lib = best(lambda: sql_funnel(conn, dialect, FUNNEL), repeat)
    hand_s, rows = best(lambda: hand(conn, dialect, HAND_FUNNEL[dialect]), repeat)
    same = len(rows) == len(lib.steps) and all(
        s.entities == int(r[1]) and _close(s.median_s, r[2]) and _close(s.p90_s, r[3])
        for s, r in zip(lib.steps, rows, strict=False)
    )
    lines.append(_line(dialect, "funnel", n, lib_s, hand_s, same, f"entities={[s.entities for s in lib.steps]}"))
    lib_s, lib_c = best(lambda: sql_cohort(conn, dialect, COHORT), repeat)
    hand_s, rows = best(lambda: hand(conn, dialect, HAND_COHORT[dialect]), repeat)
    sizes = {period_label(int(r[0]), "week"): int(r[2]) for r in rows if int(r[1]) == -1}
    cells = {(period_label(int(r[0]), "week"), int(r[1])): int(r[2]) for r in rows if int(r[1]) >= 0}
    ours = {
        (c.period, k): round(v * c.size)
        for c in lib_c.cohorts
        for k, v in enumerate(c.values)
        if v  # share -> count
    }
    same = sizes == {c.period: c.size for c in lib_c.cohorts} and cells == {
        key: value for key, value in ours.items() if key in cells or value
    }
    lines.append(_line(dialect, "cohort", n, lib_s, hand_s, same, f"cohorts={len(lib_c.cohorts)}"))
    return lines


def _line(dialect: str, what: str, n: int, lib_s: float, hand_s: float, same: bool, extra: str) -> str:
    ratio = lib_s / hand_s if hand_s > 0 else float("inf")
    verdict = "ok" if ratio <= 1.5 else "SLOW"
    answers = "same answer" if same else "DIFFERENT ANSWER"
    return (
        f"{dialect:<10} {what:<6} events={n:>10,} library={lib_s:8.3f}s hand-written={hand_s:8.3f}s "
        f"ratio={ratio:5.2f} {verdict} ({answers}; {extra})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)
    failed = False
    for backend in args.backends.split(","):
        began = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-analytics-") as folder:
            try:
                if backend == "sqlite":
                    conn, close = sqlite_backend(args.events, Path(folder))
                elif backend == "postgresql":
                    conn, close = postgres_backend(args.events, args.pg_url)
                else:
                    parser.error(f"unknown backend {backend!r}")
            except Exception as exc:  # a missing driver or server: report it and go on with the others
                print(f"{backend:<10} skipped: {exc}")
                continue
            print(f"{backend:<10} loaded {args.events:,} events in {time.perf_counter() - began:.1f} s", flush=True)
            try:
                for line in measure(conn, backend, args.events, args.repeat):  # type: ignore[arg-type]
                    print(line, flush=True)
                    failed |= "DIFFERENT" in line
            finally:
                close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
