"""API keys stored per gateway: format, hashing at rest, authentication, revocation, scope (both backends)."""

from __future__ import annotations

import time

import httpx
import pytest
from collector_testkit import ANY_KEY, KEYS, batch_dict, gz, headers

from cloud_sync.collector.app import create_app
from cloud_sync.collector.keys import Identity, KeyRing, new_key, split_key, verify
from cloud_sync.collector.store import Store


def test_key_format_and_digest() -> None:
    key, record = new_key("gw1", "note", now=5.0)
    parts = split_key(key)
    assert parts is not None
    key_id, secret = parts
    assert key.startswith("ek_") and record.key_id == key_id and len(key_id) == 12
    assert len(secret) >= 43 and secret not in (record.salt + record.digest)
    assert (record.gateway_id, record.note, record.created_at, record.revoked_at) == ("gw1", "note", 5.0, None)
    assert verify(record, secret)
    assert not verify(record, secret + "x")
    _, other = new_key("gw1")
    assert other.salt != record.salt and other.key_id != record.key_id
    for bad in ("", "ek", "ek_", "ek_abc_secret", "xx_0123456789ab_secret", "ek_0123456789ab_", "ek_0123456789AB_s"):
        assert split_key(bad) is None
    assert split_key("ek_0123456789ab_se_cr-et") == ("0123456789ab", "se_cr-et")


def test_key_ring(store: Store) -> None:
    key, record = new_key("gw1")
    store.add_key(record)
    ring = KeyRing(store, {"memory-any": None, "memory-gw2": "gw2"})
    assert ring.authenticate(key) == Identity(gateway="gw1", key_id=record.key_id)
    assert ring.authenticate("memory-any") == Identity(gateway=None)
    assert ring.authenticate("memory-gw2") == Identity(gateway="gw2")
    assert ring.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert ring.authenticate(None) is None and ring.authenticate("") is None
    assert store.revoke_key(record.key_id, time.time()) is not None
    assert ring.authenticate(key) is None
    assert store.revoke_key("000000000000", time.time()) is None


def test_stored_keys_are_listed_and_revoked_once(store: Store) -> None:
    _, first = new_key("gw1", now=1.0)
    _, second = new_key("gw2", now=2.0)
    store.add_key(second)
    store.add_key(first)
    assert [k.key_id for k in store.list_keys()] == [first.key_id, second.key_id]
    assert store.get_key(first.key_id) == first
    revoked = store.revoke_key(first.key_id, 10.0)
    assert revoked is not None and revoked.revoked_at == 10.0
    again = store.revoke_key(first.key_id, 20.0)
    assert again is not None and again.revoked_at == 10.0  # the first revocation stands


async def test_a_stored_key_writes_only_as_its_gateway(store: Store) -> None:
    key, record = new_key("gw1")
    store.add_key(record)
    app = create_app(store, KEYS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as client:
        r = await client.post("/api/v1/batches", content=gz(batch_dict(gateway="gw2")), headers=headers(key=key))
        assert r.status_code == 403
        assert "gw2" in r.json()["detail"]
        assert store.stats() == {"gateways": {}}
        r = await client.post("/api/v1/batches", content=gz(batch_dict(gateway="gw1")), headers=headers(key=key))
        assert r.status_code == 200, r.text
        r = await client.get("/api/v1/samples", params={"gateway": "gw2"}, headers={"x-api-key": key})
        assert r.status_code == 403
        store.revoke_key(record.key_id, time.time())
        r = await client.post("/api/v1/batches", content=gz(batch_dict(gateway="gw1")), headers=headers(key=key))
        assert r.status_code == 401
        assert "revoked" in r.json()["detail"]
        # the keys given in memory still work beside the stored ones
        r = await client.post("/api/v1/batches", content=gz(batch_dict(gateway="gw2")), headers=headers(key=ANY_KEY))
        assert r.status_code == 200


def test_duplicate_key_ids_are_refused(store: Store) -> None:
    from cloud_sync.collector.store import StoreError

    _, record = new_key("gw1")
    store.add_key(record)
    with pytest.raises(StoreError):
        store.add_key(record)
