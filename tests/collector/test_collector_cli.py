"""``edge-collector``: argument handling, ``keys add|list|revoke``, and the real server in a subprocess."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from collector_testkit import Backend, CollectorProcess, batch_dict, gz, headers

from cloud_sync.collector.cli import ENV_API_KEYS, UsageError, main, parse_api_keys, parse_listen
from cloud_sync.collector.keys import split_key


def test_api_key_entries() -> None:
    assert parse_api_keys(["k1", " k2=gw-2 ", "", "b64pad==", "b64pad==gw1"]) == {
        "k1": None,
        "k2": "gw-2",
        "b64pad==": None,
        "b64pad=": "gw1",
    }
    with pytest.raises(UsageError, match="invalid gateway id"):
        parse_api_keys(["k=bad gateway"])
    with pytest.raises(UsageError, match="empty key"):
        parse_api_keys(["=gw1"])
    with pytest.raises(UsageError, match="twice"):
        parse_api_keys(["k=gw1", "k=gw2"])


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:8090") == ("0.0.0.0", 8090)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("8090", "host:", ":80", "host:http", "host:70000"):
        with pytest.raises(UsageError):
            parse_listen(bad)


def test_refuses_to_start_without_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_API_KEYS, raising=False)
    assert main(["serve", "--db", f"sqlite:///{tmp_path}/c.db"]) == 2
    assert "without an API key" in capsys.readouterr().err
    assert not (tmp_path / "c.db").exists()


def test_refuses_to_start_when_the_database_has_no_live_key(
    backend: Backend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_API_KEYS, raising=False)
    assert main(["keys", "add", "--db", backend.url, "--gateway", "gw1"]) == 0
    key_id = split_key(capsys.readouterr().out.strip())
    assert key_id is not None
    assert main(["keys", "revoke", "--db", backend.url, key_id[0]]) == 0
    capsys.readouterr()
    assert main(["serve", "--db", backend.url, "--listen", "127.0.0.1:1"]) == 2
    assert "keys add" in capsys.readouterr().err


def test_unreachable_postgresql_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", "postgresql://nobody@127.0.0.1:1/none", "--api-key", "k"]) == 1
    assert "cannot open database postgresql://nobody@127.0.0.1:1/none" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["collector.db", "sqlite://c.db", "mysql://db/c"])
def test_other_database_urls_are_refused(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--db", url, "--api-key", "k"]) == 2
    err = capsys.readouterr().err
    assert "sqlite:///PATH" in err and "postgresql://" in err


@pytest.mark.parametrize(
    "args",
    [["--listen", "nope"], ["--rate-limit-batches-per-s", "-1"], ["--rate-limit-burst", "0.5"]],
)
def test_bad_options_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert main(["serve", "--db", f"sqlite:///{tmp_path}/c.db", "--api-key", "k", *args]) == 2
    assert "edge-collector:" in capsys.readouterr().err


# -- keys ---------------------------------------------------------------------------------------------


def test_keys_add_list_revoke(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "add", "--db", backend.url, "--gateway", "plant-a-gw1", "--note", "line 1 PC"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    parts = split_key(key)
    assert parts is not None and len(out.splitlines()) == 1
    key_id, secret = parts
    assert f"created key {key_id} for gateway plant-a-gw1" in err
    assert main(["keys", "add", "--db", backend.url, "--gateway", "gw2"]) == 0
    other_id = split_key(capsys.readouterr().out.strip())

    assert main(["keys", "list", "--db", backend.url]) == 0
    listing = capsys.readouterr().out
    lines = listing.splitlines()
    assert lines[0].split() == ["KEY_ID", "GATEWAY", "CREATED", "REVOKED", "NOTE"]
    assert lines[1].split()[:2] == [key_id, "plant-a-gw1"]
    assert lines[1].split()[3:] == ["-", "line", "1", "PC"]
    assert other_id is not None and other_id[0] in lines[2]
    assert secret not in listing
    # only a salted digest is stored
    stored = backend.query("SELECT salt, digest FROM api_keys WHERE key_id = ?", key_id)
    assert stored and secret not in str(stored)

    assert main(["keys", "revoke", "--db", backend.url, key_id]) == 0
    assert f"revoked key {key_id} (gateway plant-a-gw1)" in capsys.readouterr().out
    assert main(["keys", "revoke", "--db", backend.url, key_id]) == 0
    assert "already revoked" in capsys.readouterr().out
    assert main(["keys", "list", "--db", backend.url]) == 0
    revoked_line = capsys.readouterr().out.splitlines()[1].split()
    assert revoked_line[0] == key_id and revoked_line[3].endswith("Z")
    assert main(["keys", "revoke", "--db", backend.url, "feedfeedfeed"]) == 1
    assert "no key with id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--gateway", "bad gateway"], "invalid gateway id"),
        (["--gateway", "gw1", "--note", "two\nlines"], "--note"),
    ],
)
def test_keys_add_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    assert main(["keys", "add", "--db", f"sqlite:///{tmp_path}/c.db", *args]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "c.db").exists()


def test_keys_on_an_unreachable_database_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "list", "--db", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    assert "cannot open database" in capsys.readouterr().err


# -- the server ---------------------------------------------------------------------------------------


def test_serve_in_a_subprocess(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "add", "--db", backend.url, "--gateway", "gw7"]) == 0
    stored_key = capsys.readouterr().out.strip()
    batch = gz(batch_dict(gateway="gw7", first=1, last=500))
    url = "/api/v1/batches"

    first = CollectorProcess(backend.url, "--api-key", "cli-key", keys_env="env-key=gw7")
    try:
        first.wait_ready()
        r = httpx.post(first.url + url, content=batch, headers=headers(key="env-key"), timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"batch_id": "gw7:samples:1:500", "accepted": 500, "duplicates": 0, "duplicate_batch": False}
        r = httpx.post(first.url + url, content=batch, headers=headers(key="nope"), timeout=10)
        assert r.status_code == 401
        # the stored key writes as its own gateway only, until it is revoked
        other = gz(batch_dict(gateway="gw8", first=1, last=5))
        assert httpx.post(first.url + url, content=other, headers=headers(key=stored_key)).status_code == 403
        own = gz(batch_dict(gateway="gw7", first=501, last=510))
        assert httpx.post(first.url + url, content=own, headers=headers(key=stored_key)).status_code == 200
        key_id = stored_key.split("_")[1]
        assert main(["keys", "revoke", "--db", backend.url, key_id]) == 0
        assert httpx.post(first.url + url, content=own, headers=headers(key=stored_key)).status_code == 401
        code, out = first.stop(signal.SIGTERM)
    finally:
        first.kill()
    assert code == 0, out
    assert f"listening on {first.url}" in out

    # a restarted collector still has the data, and still knows the batch
    second = CollectorProcess(backend.url, "--api-key", "cli-key", port=first.port)
    try:
        second.wait_ready()
        r = httpx.post(second.url + url, content=batch, headers=headers(key="cli-key"), timeout=10)
        assert r.json()["duplicate_batch"] is True
        stats = httpx.get(f"{second.url}/api/v1/stats", timeout=10).json()
        assert stats == {"gateways": {"gw7": {"samples": 510, "events": 0, "batches": 2, "duplicate_batches": 1}}}
        code, out = second.stop(signal.SIGINT)
    finally:
        second.kill()
    assert code == 0, out
    assert "Traceback" not in out

    store = backend.open()
    try:
        assert store.stats()["gateways"]["gw7"]["samples"] == 510
    finally:
        store.close()
