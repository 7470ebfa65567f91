"""API keys: the ones stored per gateway in the database, and the ones given on the command line.

A stored key reads ``ek_<key_id>_<secret>``: ``key_id`` (12 hex digits) is public
and names the row, ``secret`` is 32 random bytes (URL-safe base64). The database
keeps only ``sha256(salt || secret)`` with a random 16-byte salt per key, and
the presented secret is compared with :func:`hmac.compare_digest`. A slow KDF
(scrypt) protects low-entropy passwords; these secrets have 256 bits of
entropy, so it would add latency to every batch without making a stolen table
any easier to use.

:class:`KeyRing` answers who a presented key belongs to: first a stored key
(looked up on every request, so a revocation made by ``edge-collector keys
revoke`` on any host takes effect at once in every collector process), then
the keys held in memory (``--api-key KEY[=GATEWAY]``, for demos and tests).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cloud_sync.collector.store import KeyRecord, Store

KEY_PREFIX = "ek"
_ID_HEX_DIGITS = 12


@dataclass(frozen=True)
class Identity:
    """Who sent a request: the gateway the key may act for (``None``: any) and the stored key's id."""

    gateway: str | None
    key_id: str | None = None


def new_key(gateway_id: str, note: str = "", *, now: float | None = None) -> tuple[str, KeyRecord]:
    """A fresh key for ``gateway_id``: the presentable key (shown once) and the record to store."""
    key_id = secrets.token_hex(_ID_HEX_DIGITS // 2)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = KeyRecord(
        key_id=key_id,
        gateway_id=gateway_id,
        salt=salt.hex(),
        digest=_digest(salt, secret).hex(),
        note=note,
        created_at=time.time() if now is None else now,
    )
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


def split_key(presented: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a key in the stored-key format, else ``None``."""
    prefix, sep, rest = presented.partition("_")
    key_id, sep2, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not sep or not sep2 or not secret or len(key_id) != _ID_HEX_DIGITS:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


def verify(record: KeyRecord, secret: str) -> bool:
    """Whether ``secret`` is the one ``record`` was made for (constant time; revocation not considered)."""
    try:
        salt, expected = bytes.fromhex(record.salt), bytes.fromhex(record.digest)
    except ValueError:
        return False
    return hmac.compare_digest(_digest(salt, secret), expected)


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """Authenticates presented keys against the store and the in-memory keys.

    ``memory_keys`` maps each key to the gateway it is bound to, or to ``None``
    for a key that may act for any gateway.
    """

    def __init__(self, store: Store, memory_keys: Mapping[str, str | None] | None = None) -> None:
        memory_keys = dict(memory_keys or {})
        if any(not key for key in memory_keys):
            raise ValueError("API keys must not be empty")
        self._store = store
        self._memory = [(key.encode(), gateway) for key, gateway in memory_keys.items()]

    def authenticate(self, presented: str | None) -> Identity | None:
        """The identity of a presented key, or ``None`` for a missing, unknown or revoked key.

        Raises :class:`~cloud_sync.collector.store.StoreError` when the stored
        keys cannot be read.
        """
        if not presented:
            return None
        if (parts := split_key(presented)) is not None:
            key_id, secret = parts
            record = self._store.get_key(key_id)
            if record is not None and record.revoked_at is None and verify(record, secret):
                return Identity(gateway=record.gateway_id, key_id=record.key_id)
        return self._memory_identity(presented)

    def _memory_identity(self, presented: str) -> Identity | None:
        candidate = presented.encode("utf-8", "surrogatepass")
        found: Identity | None = None
        for key, gateway in self._memory:  # no early exit: timing does not reveal which key matched
            if hmac.compare_digest(key, candidate):
                found = Identity(gateway=gateway)
        return found
