"""Reading a batch request body within fixed limits: size, content coding, gzip or zstd, JSON.

Nothing here trusts the client: the wire size is checked against
``Content-Length`` and again while streaming, and gzip and zstd are inflated in
bounded steps so a small "zip bomb" cannot allocate much more than the decoded
limit (a zstd frame that declares its size is refused up front when that size is
over the limit; one that does not is fed in small steps).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
import zstandard

MiB = 1024 * 1024
MAX_BODY = 32 * MiB
"""Largest body accepted on the wire (compressed size for gzip)."""
MAX_DECODED = 256 * MiB
"""Largest body accepted after gzip decompression."""

Coding = Literal["gzip", "zstd", "identity"]
_ZSTD_STEP_SIZED = 1024 * 1024
"""Input bytes fed at a time to a zstd frame that declares its size (its output is bounded by that size)."""
_ZSTD_STEP_UNSIZED = 1024
"""Input bytes fed at a time to a zstd frame without a declared size, so one step cannot inflate far."""


class Rejected(Exception):
    """A request the collector refuses; becomes an HTTP error ``{"detail": ...}``.

    ``errors`` lists ``{"field", "message"}`` problems (422, 400 for query
    parameters); ``headers`` are sent along (``Retry-After`` with 429 and 503).
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.errors = errors
        self.headers = headers


def content_coding(header: str | None) -> Coding:
    """The body's coding from a ``Content-Encoding`` header, or 415."""
    value = (header or "identity").strip().lower()
    if value in ("gzip", "x-gzip"):
        return "gzip"
    if value == "zstd":
        return "zstd"
    if value in ("identity", ""):
        return "identity"
    raise Rejected(415, f"unsupported content-encoding {value!r}: send gzip, zstd or identity")


def check_declared_length(header: str | None, limit: int = MAX_BODY) -> None:
    """Refuse early when ``Content-Length`` already says the body is too large."""
    if header is None:
        return
    try:
        length = int(header)
    except ValueError:
        raise Rejected(400, f"invalid content-length {header!r}") from None
    if length > limit:
        raise Rejected(413, f"body of {length} bytes exceeds the limit of {limit} bytes")


async def read_limited(chunks: AsyncIterator[bytes], limit: int = MAX_BODY) -> bytes:
    """Collect a streamed body, failing with 413 as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def gunzip_limited(data: bytes, limit: int = MAX_DECODED) -> bytes:
    """Inflate gzip ``data`` (one or more members) to at most ``limit`` bytes.

    Raises :class:`Rejected` 413 past the limit and 400 for data that is not
    complete, valid gzip.
    """
    out = bytearray()
    remaining = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            pending = remaining
            while not inflater.eof:
                chunk = inflater.decompress(pending, limit + 1 - len(out))
                out += chunk
                if len(out) > limit:
                    raise Rejected(413, f"decompressed body exceeds the limit of {limit} bytes")
                pending = inflater.unconsumed_tail
                if not chunk and not pending and not inflater.eof:
                    raise Rejected(400, "body is not valid gzip: the stream is truncated")
            remaining = inflater.unused_data
            if not remaining.strip(b"\0"):  # some writers pad the last member with zeros
                return bytes(out)
    except zlib.error as exc:
        raise Rejected(400, f"body is not valid gzip: {exc}") from None


def unzstd_limited(data: bytes, limit: int = MAX_DECODED) -> bytes:
    """Decompress zstd ``data`` (one or more frames) to at most ``limit`` bytes.

    Raises :class:`Rejected` 413 past the limit and 400 for data that is not
    complete, valid zstd.
    """
    out = bytearray()
    remaining = data
    try:
        while True:
            declared = zstandard.frame_content_size(remaining)
            if declared > limit - len(out):
                raise Rejected(413, f"decompressed body exceeds the limit of {limit} bytes")
            step = _ZSTD_STEP_SIZED if declared >= 0 else _ZSTD_STEP_UNSIZED
            frame = zstandard.ZstdDecompressor().decompressobj()
            pos = 0
            while not frame.eof:
                if pos >= len(remaining):
                    raise Rejected(400, "body is not valid zstd: the stream is truncated")
                out += frame.decompress(remaining[pos : pos + step])
                pos += step
                if len(out) > limit:
                    raise Rejected(413, f"decompressed body exceeds the limit of {limit} bytes")
            remaining = frame.unused_data + remaining[pos:]
            if not remaining:
                return bytes(out)
    except zstandard.ZstdError as exc:
        raise Rejected(400, f"body is not valid zstd: {exc}") from None


def decode_body(raw: bytes, coding: Coding, limit: int = MAX_DECODED) -> Any:
    """Decompress (gzip, zstd) and parse the body as JSON."""
    if coding == "gzip":
        data = gunzip_limited(raw, limit)
    elif coding == "zstd":
        data = unzstd_limited(raw, limit)
    else:
        data = raw
    if len(data) > limit:
        raise Rejected(413, f"body exceeds the limit of {limit} bytes")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, f"body is not valid JSON: {exc}") from None
