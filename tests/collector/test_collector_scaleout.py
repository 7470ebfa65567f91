"""Two collector processes on one PostgreSQL database, sent the same batches at the same time."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from collector_testkit import ROOT, CollectorProcess, PgSchemas, batch_dict, gz, headers

from cloud_sync.collector.keys import split_key
from cloud_sync.collector.migrations import MIGRATIONS

ROWS = 4000
BATCH = 200


def batches() -> list[tuple[str, bytes]]:
    """Samples 1..ROWS in batches of BATCH, every second batch also re-cut to overlap its neighbours,
    and events 1..40 in batches of 10: what gateways re-sending after crashes and restarts produce."""
    out = []
    for first in range(1, ROWS + 1, BATCH):
        out.append(("samples", gz(batch_dict(gateway="gw-a", first=first, last=first + BATCH - 1))))
        if first > BATCH and first % (2 * BATCH) == 1:
            out.append(("samples", gz(batch_dict(gateway="gw-a", first=first - 50, last=first + 49))))
    for first in range(1, 41, 10):
        out.append(("events", gz(batch_dict(gateway="gw-a", stream="events", first=first, last=first + 9))))
    return out


def test_two_collectors_share_one_database_exactly_once(pg_schemas: PgSchemas) -> None:
    db = pg_schemas.create()  # empty: the two processes also race to migrate it
    collectors = [CollectorProcess(db.url, "--api-key", "bootstrap", "--rate-limit-batches-per-s", "0") for _ in "ab"]
    try:
        # the operator adds the gateway's key with the CLI while the collectors start
        added = subprocess.run(
            [sys.executable, "-m", "cloud_sync.collector", "keys", "add", "--db", db.url, "--gateway", "gw-a"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        key = added.stdout.strip()
        assert split_key(key) is not None
        for c in collectors:
            c.wait_ready()
        work = batches()
        acks: list[list[dict[str, Any]]] = []
        lock = threading.Lock()

        def send_to_both(body: bytes) -> None:
            barrier = threading.Barrier(2)

            def send(url: str) -> dict[str, Any]:
                barrier.wait()
                r = httpx.post(f"{url}/api/v1/batches", content=body, headers=headers(key=key), timeout=30)
                assert r.status_code == 200, r.text
                return dict(r.json())

            with ThreadPoolExecutor(2) as pair:
                results = list(pair.map(send, [c.url for c in collectors]))
            with lock:
                acks.append(results)

        with ThreadPoolExecutor(4) as pool:
            for _ in pool.map(send_to_both, [body for _, body in work]):
                pass

        # each batch was committed by exactly one process; the other saw a duplicate batch
        assert len(acks) == len(work)
        for pair in acks:
            assert sorted(a["duplicate_batch"] for a in pair) == [False, True], pair
        accepted = sum(a["accepted"] for pair in acks for a in pair)
        assert accepted == ROWS + 40

        for c in collectors:
            stats = httpx.get(f"{c.url}/api/v1/stats", timeout=10).json()
            assert stats == {
                "gateways": {
                    "gw-a": {"samples": ROWS, "events": 40, "batches": len(work), "duplicate_batches": len(work)}
                }
            }
        seqs = db.query("SELECT seq FROM samples WHERE gateway_id = 'gw-a' ORDER BY seq")
        assert [s for (s,) in seqs] == list(range(1, ROWS + 1))
        assert db.query("SELECT COUNT(*), COUNT(DISTINCT seq) FROM events") == [(40, 40)]
        assert db.query("SELECT COUNT(*) FROM migrations") == [(len(MIGRATIONS),)]  # each applied once
        # the samples query sees the same rows through either process
        got = httpx.get(
            f"{collectors[1].url}/api/v1/samples",
            params={"limit": 5, "from": 1763798400.0 + ROWS - 4},
            headers={"x-api-key": key},
            timeout=10,
        ).json()
        assert [s["seq"] for s in got["samples"]] == list(range(ROWS - 4, ROWS + 1))
        for c in collectors:
            code, out = c.stop(signal.SIGTERM)
            assert code == 0, out
            assert "Traceback" not in out
    finally:
        for c in collectors:
            c.kill()
