"""Pieces of the status package: passwords and tokens, downsampling, the broadcaster, the live view."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest

from edge_agent.model import Event, Sample
from edge_agent.status.auth import Sessions, hash_password, verify_password
from edge_agent.status.history import lttb, minmax, numeric
from edge_agent.status.live import LiveView
from edge_agent.status.passwd import main as passwd_main
from edge_agent.status.providers import LiveOeeProvider
from edge_agent.status.settings import StatusSettings, UserEntry
from edge_agent.status.stream import Broadcaster, StreamClosed, TooManyClients
from tests.status.fakeplant import demo_devices, demo_settings

# -- passwords and sessions --------------------------------------------------------------------------


def test_scrypt_hash_round_trip() -> None:
    encoded = hash_password("correct horse", n=2**10)
    assert encoded.startswith("scrypt$1024$8$1$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("wrong horse", encoded)
    assert not verify_password("correct horse", "scrypt$bad")
    assert not verify_password("correct horse", "bcrypt$1$2$3$4$5")
    assert hash_password("x", n=2**10) != hash_password("x", n=2**10)  # salted
    UserEntry(name="olga", password_hash=encoded)  # the config accepts it


def test_tokens_expire_are_signed_and_revocable() -> None:
    users = [UserEntry(name="olga", password_hash=hash_password("pw-123456", n=2**10))]
    sessions = Sessions(users, ttl_s=100.0)
    session = sessions.check("olga", "pw-123456", 1000.0)
    assert session is not None and session.role == "operator" and session.expires == 1100.0
    token = sessions.token(session)
    assert sessions.verify(token, 1099.0) == session
    assert sessions.verify(token, 1100.0) is None  # expired
    assert sessions.verify(token[:-2] + "xx", 1000.0) is None  # tampered
    assert Sessions(users).verify(token, 1000.0) is None  # another key (a restart)
    sessions.revoke(session, 1001.0)
    assert sessions.verify(token, 1002.0) is None
    assert sessions.verify(None, 1.0) is None and sessions.verify("garbage", 1.0) is None


def test_failed_logins_lock_a_name_for_a_while() -> None:
    users = [UserEntry(name="olga", password_hash=hash_password("pw-123456", n=2**10))]
    sessions = Sessions(users, max_failures=3, lockout_s=60.0)
    for t in (0.0, 1.0, 2.0):
        assert sessions.check("olga", "bad", t) is None
    assert sessions.locked("olga", 3.0)
    assert sessions.check("olga", "pw-123456", 3.0) is None
    assert sessions.check("olga", "pw-123456", 70.0) is not None


def test_passwd_cli_prints_a_users_entry(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("long-enough-pw\n"))
    assert passwd_main(["--name", "olga", "--role", "operator", "--stdin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('[[users]]\nname = "olga"\npassword_hash = "scrypt$')
    encoded = out.split('password_hash = "')[1].split('"')[0]
    assert verify_password("long-enough-pw", encoded)
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert passwd_main(["--stdin"]) == 2


# -- downsampling ------------------------------------------------------------------------------------


def test_minmax_keeps_spikes() -> None:
    points = [(float(t), 0.0) for t in range(100)]
    points[37] = (37.0, 50.0)
    buckets = minmax(points, 10, 0.0, 100.0)
    assert len(buckets) == 10
    assert buckets[3] == (30.0, 5.0, 0.0, 50.0)  # (bucket start, avg, min, max)
    assert minmax(points[:5], 10) == [(float(t), 0.0, 0.0, 0.0) for t in range(5)]
    assert minmax([], 10) == []


def test_lttb_picks_the_shape() -> None:
    points = [(float(t), 0.0) for t in range(1000)]
    points[500] = (500.0, 100.0)
    chosen = lttb(points, 20)
    assert len(chosen) == 20 and chosen[0] == points[0] and chosen[-1] == points[-1]
    assert (500.0, 100.0) in chosen
    assert lttb(points[:10], 20) == points[:10]
    assert lttb(points, 2) == [points[0], points[-1]]


def test_numeric_keeps_numbers_and_flags_in_time_order() -> None:
    assert numeric([(2.0, 1), (1.0, True), (3.0, "x"), (4.0, float("nan"))]) == [(1.0, 1.0), (2.0, 1.0)]


# -- broadcaster ---------------------------------------------------------------------------------------


async def test_slow_clients_lose_the_oldest_messages_and_are_told_to_resync() -> None:
    hub = Broadcaster(queue_size=3, max_clients=2)
    sub = hub.subscribe()
    for i in range(5):
        hub.publish("twin", {"i": i})
    assert sub.dropped == 2 and hub.dropped == 2
    first = await sub.next(0.1)
    assert first is not None and first.startswith(b"event: resync\n")
    rest = [await sub.next(0.1) for _ in range(3)]
    assert all(m is not None and b'"i":' + str(i).encode() in m for i, m in zip((2, 3, 4), rest, strict=True))
    assert await sub.next(0.01) is None  # idle
    hub.subscribe()
    with pytest.raises(TooManyClients):
        hub.subscribe()
    hub.close()
    with pytest.raises(StreamClosed):
        await sub.next(0.1)
    with pytest.raises(StreamClosed):
        hub.subscribe()


async def test_stream_iteration_ends_when_closed() -> None:
    hub = Broadcaster()
    sub = hub.subscribe()
    chunks = []

    async def read() -> None:
        async for chunk in hub.iterate(sub, b"event: snapshot\ndata: {}\n\n", 0.05):
            chunks.append(chunk)

    task = asyncio.create_task(read())
    await asyncio.sleep(0.12)
    hub.publish("status", {"ok": True})
    await asyncio.sleep(0.02)
    hub.close()
    await asyncio.wait_for(task, 1)
    assert chunks[0].startswith(b"retry: 2000\n\nevent: snapshot")
    assert b": idle\n\n" in chunks and any(b"event: status" in c for c in chunks)
    assert hub.clients == set()


# -- live view -------------------------------------------------------------------------------------------


def test_live_view_ignores_its_own_events_coming_back() -> None:
    recorded: list[Event] = []
    live = LiveView(demo_devices(), demo_settings(), record=recorded.append)
    live.on_event(Event("cnc-1", "alarm_raised", {"alarm_id": "x"}))
    live.on_event(Event("cnc-1", "twin_changed", {}))
    assert live.events("cnc-1") == []
    live.on_event(Event("_gateway", "buffer_overflow", {"dropped": 5}))
    assert live.events(None)[0]["kind"] == "buffer_overflow"


async def test_live_view_keeps_recent_points_only_without_a_history_query() -> None:
    async def query(device: str, tag: str, start: float, end: float, limit: int) -> list[tuple[float, float]]:
        return [(10.0, 1.0), (11.0, 2.0)]

    samples = [Sample("cnc-1", "spindle_temp", 10.0 + i, 50.0 + i) for i in range(3)]
    own = LiveView(demo_devices(), demo_settings())
    own.on_samples(samples)
    assert (await own.history("cnc-1", "spindle_temp", 0.0, 20.0, 10))["source"] == "memory"
    assert own.registry.trends.get("cnc-1", "spindle_temp") == [(10.0, 50.0), (11.0, 51.0), (12.0, 52.0)]
    wired = LiveView(demo_devices(), demo_settings(), history=query)
    wired.on_samples(samples)
    assert wired.registry.trends.get("cnc-1", "spindle_temp") == []  # the buffer answers: nothing kept twice
    answer = await wired.history("cnc-1", "spindle_temp", 0.0, 20.0, 10)
    assert (answer["source"], answer["v"]) == ("buffer", [1.0, 2.0])


def test_live_view_restores_stale_values_and_raises_no_alarm_from_them() -> None:
    recorded: list[Event] = []
    live = LiveView(demo_devices(), demo_settings(), record=recorded.append)
    live.restore([Sample("cnc-1", "state", 1.0, 3), Sample("cnc-1", "spindle_temp", 1.0, 90.0)])
    live.tick(1000.0)
    assert live.twin("cnc-1")["stale"] is True
    assert [a.id for a in live.alarms.select("active")] == []


def test_live_oee_provider_adapts_live_oee_results() -> None:
    from types import SimpleNamespace

    class Losses:
        def as_dict(self) -> dict[str, float]:
            return {"breakdowns": 60.0}

    result = SimpleNamespace(window_from=0.0, planned_time_s=1200.0, availability=0.9, performance=0.8,
                             quality=0.95, oee=0.684, good_count=80, scrap_count=4, losses=Losses(), mtbf_s=None,
                             mttr_s=30.0)

    class Engine:
        def __init__(self, fail: bool = False) -> None:
            self.fail = fail

        def current_shift(self, now: float) -> object:
            if self.fail:
                raise ValueError("window before the kept history")
            return result

    provider = LiveOeeProvider({"cnc-1": Engine(), "cnc-2": Engine(fail=True)}, {"cnc-1": 12.0})  # type: ignore[dict-item]
    figures = provider.oee("cnc-1", 1200.0)
    assert figures is not None and figures.target == 100 and figures.good == 80 and figures.losses == {
        "breakdowns": 60.0}
    assert provider.oee("cnc-2", 1.0) is None and provider.errors == 1
    assert provider.oee("pack-1", 1.0) is None


def test_status_settings_defaults() -> None:
    s = StatusSettings()
    assert s.open_viewing and s.session_ttl_s == 43200.0
