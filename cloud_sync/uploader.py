"""Drains the gateway's buffer to the collector in idempotent, compressed batches.

Each sync round (:meth:`Uploader.sync_once`):

* sends events before samples, each stream oldest-first, in batches bounded by
  ``batch_size`` rows *and* ``batch_max_bytes`` of JSON (a batch that is too large is
  cut, and a 413 halves it);
* after an outage (more than ``drain_threshold`` unsynced samples) it interleaves:
  every ``live_every_s`` it sends the pending events and the newest samples (the
  *live tail*), and in between the backlog, oldest-first. Live data keeps arriving
  while the backlog drains; backlog, mode and drain rate are in :attr:`Uploader.status`;
* moves a stream's sync mark only after a 2xx, so nothing is lost; the batch id
  ``gateway:stream:first:last`` lets the collector recognise a re-sent batch.

Answers and what follows:

* 2xx -- the range is acknowledged;
* transport errors, 5xx, 408, 429 -- retried next round after a capped exponential
  backoff with jitter, or after ``Retry-After`` when the collector says so (a 429 asking
  for at most 2 s is waited out within the round);
* 415 to a zstd batch -- the collector predates zstd: the uploader falls back to gzip (a
  WARNING, ``sync.compression`` shows it) and sends the batch again;
* 401, 403, 404, 405, 407, 411, 415, 426 -- the gateway itself is misconfigured (key,
  URL, proxy, coding): every batch would get the same answer, so nothing is
  quarantined; reported as ``rejected`` and retried with backoff until fixed;
* any other 4xx (400, 409, 422, a 413 for a single row, ...) -- this batch is refused
  for good: it is moved to quarantine (kept with the collector's answer) and the
  uploader moves past it, with an ERROR line and a ``batch_quarantined`` event.

Compression (``compression``): ``zstd`` at level :data:`ZSTD_LEVEL`, or ``gzip`` at
``gzip_level``. zstd-1 sends about 24 % fewer bytes per sample than gzip-1 (11.1 vs 14.5)
and compresses several times faster (bench/sync.py, docs/store-and-forward.md), so the
agent's config defaults to it; a collector that answers 415 to zstd (one older than its
support) makes the uploader fall back to gzip. This class keeps gzip as its own default,
which every collector version accepts.

The httpx client is injected (tests use ``httpx.MockTransport``); :func:`make_client`
builds the production one with TLS verification, an optional client certificate and
optional HTTP/2.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import logging
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from cloud_sync.schema import SCHEMA_VERSION, batch_id
from edge_agent.errors import StoreError, UploadError

log = logging.getLogger("cloud_sync.uploader")
STREAM_ORDER = ("events", "samples")
GZIP_LEVEL = 1
ZSTD_LEVEL = 1
"""zstd level: 24 % fewer bytes than gzip-1 at a quarter of its CPU or less (bench/sync.py); 3 and 6 gain little."""
COMPRESSIONS = ("gzip", "zstd")
COMPRESSION = f"gzip-{GZIP_LEVEL}"
GATEWAY_LEVEL_4XX = frozenset({401, 403, 404, 405, 407, 411, 415, 426})
"""Answers that concern the gateway's settings, not one batch: never quarantined."""
RETRYABLE_4XX = frozenset({408, 429})
MAX_RETRY_AFTER_S = 3600.0
MAX_INLINE_WAIT_S = 2.0
"""A 429 asking to wait at most this long is waited out within the round (up to 3 times a batch)."""
MAX_ANSWER_CHARS = 2000

Rows = Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Refused:
    """A batch the collector refused for good, handed to the source to keep in quarantine."""

    batch_id: str
    stream: str
    first_seq: int
    last_seq: int
    rows: int
    status: int
    answer: str
    at: float
    body: bytes


class BatchSource(Protocol):
    """What the uploader needs from the buffer."""

    async def read(self, stream: str, limit: int, *, newest: bool = False) -> Rows:
        """Unsynced rows oldest-first; ``newest``: the rows for the live tail."""
        ...

    async def ack(self, stream: str, first_seq: int, last_seq: int) -> None:
        """The collector has the rows ``first_seq..last_seq``."""
        ...

    async def quarantine(self, refused: Refused) -> None:
        """Keep a refused batch aside and move past its range."""
        ...

    async def backlog(self) -> dict[str, int]:
        """Unsynced rows per stream."""
        ...


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
    throttled: int = 0
    backlog: dict[str, int] = field(default_factory=lambda: {"samples": 0, "events": 0})
    mode: str = "live"
    drain_rate: float | None = None
    drain_eta_s: float | None = None
    live_rows_sent: int = 0
    backlog_rows_sent: int = 0
    quarantined_batches: int = 0
    quarantined_rows: int = 0
    last_quarantine: dict[str, Any] | None = None
    compression: str = COMPRESSION
    http_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        samples = self.rows_sent.get("samples", 0)
        data["wire_bytes_per_row"] = round(self.bytes_sent / max(1, samples + self.rows_sent.get("events", 0)), 2)
        return data


def compress(data: bytes, compression: str = "gzip", level: int = GZIP_LEVEL) -> bytes:
    """``data`` compressed for the wire: ``gzip`` at ``level`` or ``zstd`` at :data:`ZSTD_LEVEL`
    (one frame with its content size in the header, as the collector prefers)."""
    if compression == "zstd":
        import zstandard  # imported where used: a gzip agent does not load it

        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    if compression != "gzip":
        raise ValueError(f"unknown compression {compression!r} (gzip or zstd)")
    return gzip.compress(data, compresslevel=level)


def body_coding(body: bytes) -> str:
    """The ``Content-Encoding`` of a stored batch body, from its magic bytes."""
    if body[:2] == b"\x1f\x8b":
        return "gzip"
    if body[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "identity"


def encode_batch(
    gateway_id: str, stream: str, rows: Rows, backlog: dict[str, int], level: int = GZIP_LEVEL,
    compression: str = "gzip",
) -> bytes:
    """The compressed JSON body of one batch (cloud_sync.schema)."""
    return compress(_json(gateway_id, stream, rows, backlog), compression, level)


def _json(gateway_id: str, stream: str, rows: Rows, backlog: dict[str, int]) -> bytes:
    first, last = rows[0][0], rows[-1][0]
    return orjson.dumps(
        {
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
    )


def fit_batch(
    gateway_id: str, stream: str, rows: Rows, backlog: dict[str, int], max_bytes: int, level: int = GZIP_LEVEL,
    compression: str = "gzip",
) -> tuple[Rows, bytes]:
    """The longest prefix of ``rows`` whose JSON fits ``max_bytes`` (at least one row), compressed."""
    data = _json(gateway_id, stream, rows, backlog)
    while len(data) > max_bytes and len(rows) > 1:
        keep = max(1, min(len(rows) - 1, int(len(rows) * max_bytes / len(data) * 0.95)))
        rows = rows[:keep]
        data = _json(gateway_id, stream, rows, backlog)
    return rows, compress(data, compression, level)


def make_client(
    *,
    timeout_s: float = 10.0,
    verify_tls: bool = True,
    ca_file: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    http2: bool = False,
) -> httpx.AsyncClient:
    """The production client: TLS verified (system CAs or ``ca_file``), optional client
    certificate, HTTP/1.1 or HTTP/2 (``http2`` needs the ``h2`` package and an https URL).

    Raises OSError naming the setting when a certificate file cannot be loaded.
    """
    context = ssl.create_default_context()
    try:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        if client_cert:
            context.load_cert_chain(client_cert, client_key)
    except (OSError, ssl.SSLError) as exc:
        which = "ca_file" if ca_file and not client_cert else "ca_file/client_cert/client_key"
        raise OSError(f"collector.{which}: cannot load certificate: {exc}") from exc
    if not verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return httpx.AsyncClient(timeout=timeout_s, verify=context, http2=http2)


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
        batch_max_bytes: int = 4 * 1024 * 1024,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_drain_s: float = 30.0,
        live_every_s: float = 1.0,
        drain_threshold: int | None = None,
        gzip_level: int = GZIP_LEVEL,
        compression: str = "gzip",
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.source = source
        self.client = client
        self.gateway_id = gateway_id
        self.endpoint = url.rstrip("/") + "/api/v1/batches"
        self.api_key = api_key
        self.batch_size = batch_size
        self.batch_max_bytes = batch_max_bytes
        self._read_limit: dict[str, int] = {}
        """Rows read per batch of each stream: ``batch_size``, less while the stream's rows are so large that a
        read of ``batch_size`` rows would hold many times ``batch_max_bytes`` in memory (large events)."""
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_drain_s = max_drain_s
        self.live_every_s = live_every_s
        self.drain_threshold = 4 * batch_size if drain_threshold is None else drain_threshold
        self.on_event = on_event
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
        self.gzip_level = gzip_level
        self.status = SyncStatus()
        self._headers = {"x-api-key": api_key, "content-type": "application/json"}
        self._use(compression)
        self._round_rows = 0
        self._round_started = 0.0
        self._round_budget = max_drain_s
        self._interrupted = False

    def _use(self, compression: str) -> None:
        self.compression = compression
        level = self.gzip_level if compression == "gzip" else ZSTD_LEVEL
        self.status.compression = f"{compression}-{level}"
        self._headers["content-encoding"] = compression

    def interrupt(self) -> None:
        """End the running round after its current batch (used at shutdown)."""
        self._interrupted = True

    async def sync_once(self, budget_s: float | None = None) -> int:
        """One sync round of at most ``budget_s`` (default ``max_drain_s``) seconds; returns rows
        delivered (0 while backing off after a failure)."""
        st = self.status
        now = time.time()
        if now < st.next_attempt:
            return 0
        st.last_attempt = now
        self._round_rows = 0
        self._round_started = time.monotonic()
        self._round_budget = self.max_drain_s if budget_s is None else budget_s
        self._interrupted = False
        try:
            st.backlog = await self.source.backlog()
            draining = st.backlog.get("samples", 0) > self.drain_threshold
            st.mode = "draining" if draining else "live"
            await self._send_stream("events")
            if draining:
                await self._drain("samples")
            else:
                await self._send_stream("samples")
            st.backlog = await self.source.backlog()
        except (UploadError, StoreError) as exc:
            self._failed(exc)
            return self._round_rows
        if st.consecutive_failures:
            log.info("collector reachable again, sync resumed (backlog %s)", st.backlog)
        st.consecutive_failures = 0
        st.last_error = None
        st.last_success = time.time()
        st.last_result = "ok" if self._round_rows else "idle"
        if st.backlog.get("samples", 0) <= self.drain_threshold:
            st.mode, st.drain_eta_s = "live", None
        return self._round_rows

    # -- rounds --------------------------------------------------------------------------------

    def _time_left(self) -> bool:
        return not self._interrupted and time.monotonic() - self._round_started < self._round_budget

    async def _send_stream(self, stream: str, *, newest: bool = False) -> int:
        """Send ``stream`` until it has nothing more to send (or the round's time is up)."""
        sent = 0
        while self._time_left():
            limit = self.read_limit(stream)
            rows = await self.source.read(stream, limit, newest=newest)
            if not rows:
                break
            done = await self._deliver(stream, rows)
            sent += done
            if done == len(rows) and len(rows) < limit:
                break
        return sent

    async def _drain(self, stream: str) -> None:
        """Backlog oldest-first, with the live tail (and events) sent every ``live_every_s``."""
        st = self.status
        started = time.monotonic()
        drained = 0
        finished = False
        try:
            while self._time_left() and not finished:
                await self._send_stream("events")
                st.live_rows_sent += await self._send_stream(stream, newest=True)
                slice_end = time.monotonic() + self.live_every_s
                while True:  # at least one backlog batch per slice
                    limit = self.read_limit(stream)
                    rows = await self.source.read(stream, limit)
                    done = await self._deliver(stream, rows) if rows else 0
                    drained += done
                    if done == len(rows) < limit:  # reached an island of the live tail (or the end)
                        # an outage during an earlier drain leaves a second gap above the first island:
                        # go on with it unless what is left is live data only
                        st.backlog = await self.source.backlog()
                        finished = not rows or st.backlog.get(stream, 0) <= self.drain_threshold
                        break
                    if time.monotonic() >= slice_end or not self._time_left():
                        break
        finally:
            st.backlog_rows_sent += drained
        elapsed = time.monotonic() - started
        if drained and elapsed > 0:
            rate = drained / elapsed
            st.drain_rate = rate if st.drain_rate is None else 0.5 * st.drain_rate + 0.5 * rate
            st.drain_eta_s = round(st.backlog.get(stream, 0) / st.drain_rate, 1) if st.drain_rate else None

    def read_limit(self, stream: str) -> int:
        return self._read_limit.get(stream, self.batch_size)

    def _fitted(self, stream: str, read: int, sent: int) -> None:
        """Adapt the stream's read size: a read cut by the byte limit shrinks it to about what fitted; a read
        that fitted whole lets it grow back (doubling) towards ``batch_size``."""
        limit = self.read_limit(stream)
        if sent < read:
            self._read_limit[stream] = max(1, min(self.batch_size, sent + sent // 4))
        elif read >= limit and limit < self.batch_size:
            self._read_limit[stream] = min(self.batch_size, 2 * limit)

    # -- one batch -----------------------------------------------------------------------------

    async def _deliver(self, stream: str, rows: Rows, throttled: int = 0) -> int:
        """Send a prefix of ``rows`` as one batch (all of them if within the byte limit); returns
        the rows that are now delivered or quarantined."""
        backlog = dict(self.status.backlog)
        read = len(rows)
        if len(rows) > 200:
            rows, body = await asyncio.to_thread(
                fit_batch, self.gateway_id, stream, rows, backlog, self.batch_max_bytes, self.gzip_level,
                self.compression,
            )
        else:
            rows, body = fit_batch(
                self.gateway_id, stream, rows, backlog, self.batch_max_bytes, self.gzip_level, self.compression
            )
        self._fitted(stream, read, len(rows))
        first, last = int(rows[0][0]), int(rows[-1][0])
        response = await self._post(body)
        code = response.status_code
        if code < 300:
            self._accepted(stream, rows, body, response)
            await self.source.ack(stream, first, last)
            return len(rows)
        answer = response.text[:MAX_ANSWER_CHARS]
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if code == 429 and retry_after is not None and retry_after <= MAX_INLINE_WAIT_S and throttled < 3:
            # the collector's rate limit: wait as asked and go on within this round
            self.status.throttled += 1
            await asyncio.sleep(retry_after)
            return await self._deliver(stream, rows, throttled + 1)
        if code == 415 and self.compression == "zstd":
            # a collector older than zstd support: fall back to gzip for this agent's run
            log.warning("collector does not accept zstd (415: %s); sending gzip from now on", answer[:200])
            self._use("gzip")
            return await self._deliver(stream, rows, throttled)
        if code == 413 and len(rows) > 1:
            self.batch_max_bytes = max(1024, self.batch_max_bytes // 2)
            log.warning("collector: batch too large (413); batches now at most %d bytes", self.batch_max_bytes)
            return await self._deliver(stream, rows[: len(rows) // 2])
        if 400 <= code < 500 and code not in RETRYABLE_4XX and code not in GATEWAY_LEVEL_4XX:
            await self._quarantine(stream, rows, body, code, answer)
            return len(rows)
        retryable = code >= 500 or code in RETRYABLE_4XX
        raise UploadError(f"collector answered {code}: {answer[:300]}", retryable=retryable, retry_after=retry_after)

    async def _post(self, body: bytes) -> httpx.Response:
        try:
            return await self.client.post(self.endpoint, content=body, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise UploadError(f"collector timed out ({self.endpoint})") from exc
        except httpx.HTTPError as exc:
            raise UploadError(f"collector unreachable ({self.endpoint}): {exc}") from exc

    def _accepted(self, stream: str, rows: Rows, body: bytes, response: httpx.Response) -> None:
        st = self.status
        st.batches_sent += 1
        st.bytes_sent += len(body)
        st.rows_sent[stream] += len(rows)
        st.backlog[stream] = max(0, st.backlog.get(stream, 0) - len(rows))
        st.http_version = response.http_version
        self._round_rows += len(rows)
        try:
            if response.json().get("duplicate_batch"):
                st.duplicate_batches += 1
        except ValueError:
            pass

    async def _quarantine(self, stream: str, rows: Rows, body: bytes, code: int, answer: str) -> None:
        first, last = int(rows[0][0]), int(rows[-1][0])
        bid = batch_id(self.gateway_id, stream, first, last)
        await self.source.quarantine(Refused(bid, stream, first, last, len(rows), code, answer, time.time(), body))
        log.error(
            "collector refused batch %s (%d rows) with %d: %s -- moved to quarantine, sync goes on",
            bid,
            len(rows),
            code,
            answer[:300],
        )
        st = self.status
        st.quarantined_batches += 1
        st.quarantined_rows += len(rows)
        st.backlog[stream] = max(0, st.backlog.get(stream, 0) - len(rows))
        st.last_quarantine = {"batch_id": bid, "status": code, "answer": answer[:300], "at": time.time()}
        self._round_rows += len(rows)
        if self.on_event is not None:
            self.on_event(
                "batch_quarantined",
                {
                    "batch_id": bid,
                    "stream": stream,
                    "first_seq": first,
                    "last_seq": last,
                    "rows": len(rows),
                    "status": code,
                    "answer": answer[:MAX_ANSWER_CHARS],
                },
            )

    def _failed(self, exc: UploadError | StoreError) -> None:
        st = self.status
        if st.consecutive_failures == 0:
            log.error("sync failed: %s", exc)
        else:
            log.debug("sync still failing: %s", exc)
        st.consecutive_failures += 1
        st.last_error = str(exc)
        retryable = getattr(exc, "retryable", True)
        st.last_result = "failed" if retryable else "rejected"
        st.next_attempt = time.time() + self.backoff_delay(getattr(exc, "retry_after", None))

    def backoff_delay(self, retry_after: float | None = None) -> float:
        """Delay before the next round: exponential in the consecutive failures, capped at
        ``backoff_max_s``, with jitter (50-100 %); at least ``Retry-After`` (itself capped at an hour)."""
        n = max(1, self.status.consecutive_failures)
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(n - 1, 30))
        delay *= random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        return delay


async def post_body(client: httpx.AsyncClient, url: str, api_key: str, body: bytes) -> tuple[int, str]:
    """POST a batch body as it is (a quarantined batch replayed by an operator); returns the
    collector's status and answer. Raises :class:`UploadError` when the collector cannot be reached."""
    endpoint = url.rstrip("/") + "/api/v1/batches"
    headers = {"x-api-key": api_key, "content-type": "application/json", "content-encoding": body_coding(body)}
    try:
        response = await client.post(endpoint, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise UploadError(f"collector timed out ({endpoint})") from exc
    except httpx.HTTPError as exc:
        raise UploadError(f"collector unreachable ({endpoint}): {exc}") from exc
    return response.status_code, response.text[:MAX_ANSWER_CHARS]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
