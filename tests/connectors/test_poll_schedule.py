"""Loop timing: the fixed-rate poll schedule and the cancellation guard."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from edge_agent.connectors.schedule import PollSchedule, raise_if_cancelled


def test_slots_do_not_drift_with_poll_duration() -> None:
    s = PollSchedule(1.0, start=100.0)
    assert s.advance(100.2) == pytest.approx(0.8)  # poll took 0.2 s: wait for slot 101
    assert s.due == 101.0
    assert s.advance(101.7) == pytest.approx(0.3)  # slot 102
    assert s.skipped == 0


def test_overrun_skips_missed_slots_instead_of_bursting() -> None:
    s = PollSchedule(1.0, start=0.0)
    assert s.advance(3.5) == pytest.approx(0.5)  # slots 1, 2, 3 passed while polling: next is 4
    assert s.due == 4.0
    assert s.skipped == 3
    assert s.advance(4.1) == pytest.approx(0.9)


def test_exactly_on_time_does_not_skip() -> None:
    s = PollSchedule(0.5, start=0.0)
    assert s.advance(0.5) == 0.0
    assert s.skipped == 0


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PollSchedule(0)


async def test_raise_if_cancelled_restores_a_swallowed_cancellation() -> None:
    reached = []

    async def swallowing() -> None:
        # what asyncio.wait_for does on Python 3.11 when a cancel races a result
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        reached.append("after the swallowed cancel")
        raise_if_cancelled()
        reached.append("never")

    task = asyncio.create_task(swallowing())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert reached == ["after the swallowed cancel"]


async def test_raise_if_cancelled_is_a_no_op_otherwise() -> None:
    raise_if_cancelled()
    async with asyncio.timeout(5):
        raise_if_cancelled()
