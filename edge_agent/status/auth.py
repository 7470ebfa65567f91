"""Operator login: scrypt password hashes, signed session tokens with expiry, and login throttling.

A password hash is ``scrypt$N$r$p$SALT$HASH`` (base64url, stdlib :func:`hashlib.scrypt`).
A session token is ``PAYLOAD.SIGNATURE``: the payload (user, role, expiry, a
nonce) in base64url JSON, the signature HMAC-SHA256 with a key made at start
(tokens end with the process; operators log in again after a restart). Logout
revokes the token's nonce until the token would have expired anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.status.settings import ROLES, UserEntry

__all__ = ["Session", "Sessions", "hash_password", "verify_password"]

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_DUMMY = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P,
                  salt: bytes | None = None) -> str:
    """The ``scrypt$N$r$p$SALT$HASH`` form of ``password`` for ``[[users]] password_hash``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (constant time in the comparison; False if malformed)."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=256 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    role: str
    expires: float
    nonce: str

    def can(self, permission: str) -> bool:
        return permission in ROLES.get(self.role, frozenset())


class Sessions:
    """Users from the config, tokens signed with a per-process key, failed logins throttled."""

    def __init__(self, users: Sequence[UserEntry], ttl_s: float = 12 * 3600.0, *, max_failures: int = 5,
                 lockout_s: float = 60.0, key: bytes | None = None) -> None:
        self.users = {u.name: u for u in users}
        self.ttl_s = ttl_s
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._key = key or secrets.token_bytes(32)
        self._revoked: dict[str, float] = {}
        self._failures: dict[str, deque[float]] = {}

    # -- login --------------------------------------------------------------------------------

    def locked(self, name: str, now: float) -> bool:
        recent = self._failures.get(name)
        if not recent:
            return False
        while recent and now - recent[0] > self.lockout_s:
            recent.popleft()
        return len(recent) >= self.max_failures

    def check(self, name: str, password: str, now: float) -> Session | None:
        """A new session if the password is right (blocking: scrypt takes tens of ms; run it in a thread)."""
        if self.locked(name, now):
            return None
        user = self.users.get(name)
        ok = verify_password(password, user.password_hash if user else _dummy_hash())
        if user is None or not ok:
            if len(self._failures) > 1000:
                self._failures.clear()
            self._failures.setdefault(name, deque(maxlen=self.max_failures)).append(now)
            return None
        self._failures.pop(name, None)
        return Session(user.name, user.role, now + self.ttl_s, secrets.token_hex(8))

    # -- tokens -------------------------------------------------------------------------------

    def token(self, session: Session) -> str:
        payload = _b64(json.dumps([session.user, session.role, session.expires, session.nonce]).encode())
        return f"{payload}.{self._sign(payload)}"

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def verify(self, token: str | None, now: float) -> Session | None:
        """The session of a valid, unexpired, unrevoked token; None otherwise."""
        if not token or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            user, role, expires, nonce = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        if float(expires) <= now or nonce in self._revoked or user not in self.users:
            return None
        current = self.users[user].role
        return Session(str(user), str(current if current else role), float(expires), str(nonce))

    def revoke(self, session: Session, now: float) -> None:
        self._revoked = {n: exp for n, exp in self._revoked.items() if exp > now}
        self._revoked[session.nonce] = session.expires


def _dummy_hash() -> str:
    """A hash to check unknown names against, so their answer takes as long as a wrong password."""
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = hash_password(secrets.token_hex(8))
    return _DUMMY
