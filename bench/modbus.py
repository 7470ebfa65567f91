"""Modbus TCP: tags/s polled by the agent's connector vs raw pymodbus requests on the same register map.

    python bench/modbus.py [--seconds S] [--profile cnc_vmc]

A pymodbus server in a child process serves the profile's register image. In the same run:

* raw: a bare pymodbus client sends the planned block reads back to back (no decoding);
  tags/s = (reads completed / reads per poll) * tags per poll / seconds;
* raw, one request per tag: the same without the planner;
* agent: the ModbusConnector polling as fast as it can (poll_interval 1 us) into a counting
  sink: samples/s.

It prints each figure, the agent's ratio to raw, and the planner's request count against one
request per tag.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import Row, add_json_argument, write_rows
from edge_agent.config import Device, Location
from edge_agent.connectors.base import CommitCallback, DeviceStatus
from edge_agent.connectors.modbus.codec import encode
from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.modbus.connector import ModbusConnector
from edge_agent.connectors.modbus.planner import plan_reads
from edge_agent.model import Event, Mark, Sample
from edge_agent.profiles import ModbusProfile, load_profile, shipped_profiles_dir

VALUES: dict[str, Any] = {"state": 1, "good_count": 123456, "spindle_speed": 8000.0, "program": "O1234",
                          "running": True, "energy": 12345.678, "feed_rate": 1500.5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def image(profile: ModbusProfile) -> dict[str, list[int]]:
    tables: dict[str, list[int]] = {"holding": [0] * 200, "input": [0] * 200, "coil": [0] * 64, "discrete": [0] * 64}
    for tag in profile.tags:
        if tag.name in VALUES:
            words = encode(tag, VALUES[tag.name], scaled=True)
            tables[tag.table][tag.address : tag.address + len(words)] = words
    return tables


def serve(port: int, tables: dict[str, list[int]]) -> None:
    """Child process: a pymodbus TCP server with the register image."""

    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import StartAsyncTcpServer

    logging.getLogger("pymodbus").setLevel(logging.ERROR)

    def block(values: list[int], bits: bool = False) -> ModbusSequentialDataBlock:
        return ModbusSequentialDataBlock(1, [bool(v) for v in values] if bits else values)

    device = ModbusDeviceContext(hr=block(tables["holding"]), ir=block(tables["input"]),
                                 co=block(tables["coil"], True), di=block(tables["discrete"], True))
    context = ModbusServerContext(devices={1: device}, single=False)
    asyncio.run(StartAsyncTcpServer(context, address=("127.0.0.1", port)))


class CountingSink:
    """A sink that only counts."""

    def __init__(self) -> None:
        self.status = DeviceStatus("bench", "modbus")

    async def emit(
        self, samples: Sequence[Sample], on_commit: CommitCallback | None = None, marks: Sequence[Mark] = ()
    ) -> None:
        self.status.samples += len(samples)

    async def delivered(self, source: str) -> dict[int, str]:
        return {}

    def event(self, event: Event) -> None:
        pass

    def connected(self) -> None:
        self.status.state = "connected"

    def disconnected(self, error: BaseException | str) -> None:
        self.status.errors += 1


async def raw(port: int, reads: list[tuple[str, int, int]], seconds: float) -> tuple[int, float]:
    """Reads completed by a bare pymodbus client sending ``reads`` round-robin for ``seconds``, and the
    process CPU seconds they took."""
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0)
    await client.connect()
    methods = {"holding": client.read_holding_registers, "input": client.read_input_registers,
               "coil": client.read_coils, "discrete": client.read_discrete_inputs}
    done = 0
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for table, start, count in reads:
            response = await methods[table](start, count=count, device_id=1)
            assert not response.isError()
            done += 1
    cpu = time.process_time() - cpu
    client.close()
    return done, cpu


async def agent(port: int, profile: ModbusProfile, seconds: float) -> tuple[int, int, float]:
    """Samples and requests of the agent's connector polling without pause for ``seconds``, and the
    process CPU seconds of that window."""
    conn = ModbusConnection(host="127.0.0.1", port=port, poll_interval_s=1e-6, stagger_s=0.0)
    device = Device("bench", profile, Path("bench.toml"), conn, Location())
    sink = CountingSink()
    task = asyncio.create_task(ModbusConnector(device, "bench").run(sink, lambda: None))
    while sink.status.state != "connected":
        await asyncio.sleep(0.01)
    start_samples, start_requests = sink.status.samples, sink.status.requests
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    samples, requests = sink.status.samples - start_samples, sink.status.requests - start_requests
    cpu = time.process_time() - cpu
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sink.status.errors == 0, "the connector reported errors"
    return samples, requests, cpu


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="raw and agent alternate; medians are printed")
    parser.add_argument("--profile", default="cnc_vmc")
    add_json_argument(parser)
    args = parser.parse_args()
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # cancelled requests at the end of a run are expected
    profile = load_profile(shipped_profiles_dir() / f"{args.profile}.toml")
    assert isinstance(profile, ModbusProfile)
    tags = len(profile.tags)
    plan = plan_reads(profile.tags)
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, image(profile)), daemon=True)
    server.start()
    raw_tags: list[float] = []
    per_tag_tags: list[float] = []
    agent_tags: list[float] = []
    agent_requests: list[float] = []
    raw_cpu_us: list[float] = []  # process CPU per request
    agent_cpu_us: list[float] = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the Modbus server did not start") from None
                time.sleep(0.05)
        planned = [(r.table, r.start, r.count) for r in plan]
        per_tag = [(t.table, t.address, t.register_count) for t in profile.tags]
        s = args.seconds
        for _ in range(args.rounds):
            done, cpu = asyncio.run(raw(port, planned, s))
            raw_tags.append(done / len(planned) * tags / s)
            raw_cpu_us.append(cpu / max(done, 1) * 1e6)
            per_tag_tags.append(asyncio.run(raw(port, per_tag, s))[0] / s)
            samples, requests, cpu = asyncio.run(agent(port, profile, s))
            agent_tags.append(samples / s)
            agent_requests.append(requests / s)
            agent_cpu_us.append(cpu / max(requests, 1) * 1e6)
    finally:
        server.terminate()
        server.join(5)
    raw_s, per_tag_s, agent_s = median(raw_tags), median(per_tag_tags), median(agent_tags)
    print(f"profile {args.profile}: {tags} tags; planner: {len(plan)} requests per poll vs {tags} one-per-tag "
          f"({tags / len(plan):.1f}x fewer)")
    print(f"medians of {args.rounds} rounds of {args.seconds:g} s:")
    print(f"  raw pymodbus, planned reads:    {raw_s:8.0f} tags/s ({raw_s * len(plan) / tags:.0f} requests/s)")
    print(f"  raw pymodbus, one read per tag: {per_tag_s:8.0f} tags/s")
    print(f"  agent ModbusConnector:          {agent_s:8.0f} tags/s ({median(agent_requests):.0f} requests/s)")
    print(f"agent / raw (same plan): {agent_s / raw_s:.2f}; agent / raw one-per-tag: {agent_s / per_tag_s:.2f}")
    raw_us, agent_us = median(raw_cpu_us), median(agent_cpu_us)
    print(f"process CPU per request: raw {raw_us:.0f} us, agent {agent_us:.0f} us "
          f"(raw / agent {raw_us / agent_us:.2f}; the agent decodes {tags / len(plan):.0f} tags per request, "
          "raw decodes none)")
    ratio = agent_s / raw_s
    write_rows(args.json, [
        Row("Modbus TCP", f"ModbusConnector polling {args.profile} ({tags} tags) without pause",
            round(agent_s), "tags/s", round(raw_s), "tags/s (bare pymodbus, same planned requests)",
            round(ratio, 2), ">= 0.8", ratio >= 0.8,
            extra={"agent_requests_per_s": round(median(agent_requests)),
                   "raw_one_per_tag_tags_per_s": round(per_tag_s),
                   "cpu_us_per_request": {"raw": round(raw_us, 1), "agent": round(agent_us, 1)}}),
        Row("Modbus request planner", f"read requests per poll of {args.profile}", len(plan), "requests/poll",
            tags, "requests/poll (one per tag)", round(tags / len(plan), 2), ">= 5x fewer", tags / len(plan) >= 5),
    ])


if __name__ == "__main__":
    main()
