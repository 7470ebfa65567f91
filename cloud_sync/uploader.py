"""Drains the gateway's buffer to the collector in idempotent, compressed batches.

The uploader reads rows above the acknowledged sequence mark from a
:class:`BatchSource`, POSTs them as gzip'd JSON (cloud_sync.schema), and moves the
mark only after a 2xx. Events go before samples. Transport failures and 5xx/408/429
are retried with capped exponential backoff and jitter (``Retry-After`` honoured);
other 4xx answers are not retryable and are reported as such.

The httpx client is injected, so tests can use ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from cloud_sync.schema import SCHEMA_VERSION, batch_id
from edge_agent.errors import UploadError

log = logging.getLogger("cloud_sync.uploader")
STREAM_ORDER = ("events", "samples")


class BatchSource(Protocol):
    async def read(self, stream: str, limit: int) -> list[list[Any]]: ...

    async def ack(self, stream: str, last_seq: int) -> None: ...

    async def backlog(self) -> dict[str, int]: ...


@dataclass
class SyncStatus:
    last_attempt: float | None = None
    last_success: float | None = None
    last_result: str = "never"
    last_error: str | None = None
    consecutive_failures: int = 0
    next_attempt: float = 0.0
    batches_sent: int = 0
    rows_sent: dict[str, int] = field(default_factory=lambda: {"samples": 0, "events": 0})
    bytes_sent: int = 0
    duplicate_batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def encode_batch(gateway_id: str, stream: str, rows: list[list[Any]], backlog: dict[str, int]) -> bytes:
    first, last = rows[0][0], rows[-1][0]
    body = {
        "schema_version": SCHEMA_VERSION,
        "gateway_id": gateway_id,
        "batch_id": batch_id(gateway_id, stream, first, last),
        "stream": stream,
        "first_seq": first,
        "last_seq": last,
        "sent_at": time.time(),
        "backlog": backlog,
        "rows": rows,
    }
    return gzip.compress(orjson.dumps(body), compresslevel=1)


class Uploader:
    def __init__(
        self,
        source: BatchSource,
        client: httpx.AsyncClient,
        *,
        gateway_id: str,
        url: str,
        api_key: str,
        batch_size: int = 5000,
        backoff_max_s: float = 60.0,
        max_drain_s: float = 30.0,
    ) -> None:
        self.source = source
        self.client = client
        self.gateway_id = gateway_id
        self.endpoint = url.rstrip("/") + "/api/v1/batches"
        self.api_key = api_key
        self.batch_size = batch_size
        self.backoff_max_s = backoff_max_s
        self.max_drain_s = max_drain_s
        self.status = SyncStatus()

    async def sync_once(self) -> int:
        """Send batches until the buffer is drained (or a time budget is spent); returns rows sent.

        While in backoff after a failure it returns 0 without sending.
        """
        now = time.time()
        if now < self.status.next_attempt:
            return 0
        self.status.last_attempt = now
        sent = 0
        started = time.monotonic()
        try:
            for stream in STREAM_ORDER:
                while time.monotonic() - started < self.max_drain_s:
                    rows = await self.source.read(stream, self.batch_size)
                    if not rows:
                        break
                    await self._send(stream, rows)
                    await self.source.ack(stream, rows[-1][0])
                    sent += len(rows)
                    self.status.rows_sent[stream] += len(rows)
                    if len(rows) < self.batch_size:
                        break
        except UploadError as exc:
            self._failed(exc)
            return sent
        if self.status.consecutive_failures:
            log.info("collector reachable again, sync resumed")
        self.status.consecutive_failures = 0
        self.status.last_error = None
        self.status.last_success = time.time()
        self.status.last_result = "ok" if sent else "idle"
        return sent

    async def _send(self, stream: str, rows: list[list[Any]]) -> None:
        backlog = await self.source.backlog()
        body = await asyncio.to_thread(encode_batch, self.gateway_id, stream, rows, backlog)
        headers = {
            "x-api-key": self.api_key,
            "content-type": "application/json",
            "content-encoding": "gzip",
        }
        try:
            response = await self.client.post(self.endpoint, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise UploadError(f"collector timed out ({self.endpoint})") from exc
        except httpx.HTTPError as exc:
            raise UploadError(f"collector unreachable ({self.endpoint}): {exc}") from exc
        if response.status_code >= 300:
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
            retry_after = _retry_after(response.headers.get("retry-after"))
            detail = response.text[:300]
            raise UploadError(
                f"collector answered {response.status_code}: {detail}",
                retryable=retryable,
                retry_after=retry_after,
            )
        self.status.batches_sent += 1
        self.status.bytes_sent += len(body)
        try:
            if response.json().get("duplicate_batch"):
                self.status.duplicate_batches += 1
        except ValueError:
            pass

    def _failed(self, exc: UploadError) -> None:
        st = self.status
        if st.consecutive_failures == 0:
            log.error("sync failed: %s", exc)
        else:
            log.debug("sync still failing: %s", exc)
        st.consecutive_failures += 1
        st.last_error = str(exc)
        st.last_result = "failed" if exc.retryable else "rejected"
        delay = min(self.backoff_max_s, 1.0 * 2 ** min(st.consecutive_failures - 1, 20))
        delay *= random.uniform(0.5, 1.0)
        if exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, self.backoff_max_s * 5))
        st.next_attempt = time.time() + delay


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
