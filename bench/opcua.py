"""OPC UA: notifications/s handled by the agent's connector vs a bare asyncua subscriber.

    python bench/opcua.py [--seconds S] [--rounds N] [--nodes N]

An asyncua server in a child process changes ``--nodes`` Double variables round-robin as fast
as it can (asyncua forwards every write to subscribers). In the same run, alternating:

* bare: an asyncua client with one subscription (50 ms publishing interval) whose handler only
  counts data change notifications;
* agent: the OpcuaConnector (subscribe mode, same interval) into a counting sink.

It prints notifications/s and the client process's CPU time per notification for each, and the
agent's ratio to the bare subscriber (medians of the rounds).
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
from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.connectors.opcua.connector import OpcuaConnector
from edge_agent.model import Event, Mark, Sample
from edge_agent.profiles import OpcuaProfile

INTERVAL_MS = 50.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(port: int, nodes: int) -> None:
    """Child process: an asyncua server writing its variables as fast as it can."""

    from asyncua import Server, ua

    logging.getLogger("asyncua").setLevel(logging.ERROR)

    async def run() -> None:
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace("urn:bench")
        obj = await server.nodes.objects.add_object(ua.NodeId("Bench", idx), "Bench")
        variables = [await obj.add_variable(ua.NodeId(f"Bench.V{i}", idx), f"V{i}", 0.0) for i in range(nodes)]
        async with server:
            value = 0.0
            while True:
                for var in variables:
                    value += 1.0
                    await var.write_value(value)
                await asyncio.sleep(0)

    asyncio.run(run())


def profile(nodes: int) -> OpcuaProfile:
    return OpcuaProfile.model_validate({
        "protocol": "opcua", "profile": {"name": "bench"},
        "tags": [{"name": f"v{i}", "node_id": f"ns=2;s=Bench.V{i}"} for i in range(nodes)],
    })


class CountingSink:
    def __init__(self) -> None:
        self.status = DeviceStatus("bench", "opcua")

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


async def bare(url: str, nodes: int, seconds: float) -> tuple[int, float]:
    """Notifications counted by a bare asyncua subscriber in ``seconds``, and the CPU seconds used."""
    from asyncua import Client, ua

    class Handler:
        count = 0

        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            Handler.count += 1

    async with Client(url) as client:
        sub = await client.create_subscription(INTERVAL_MS, Handler())
        await sub.subscribe_data_change([client.get_node(f"ns=2;s=Bench.V{i}") for i in range(nodes)],
                                        sampling_interval=ua.Double(INTERVAL_MS))
        await asyncio.sleep(1.0)  # warm up
        start, cpu = Handler.count, time.process_time()
        await asyncio.sleep(seconds)
        return Handler.count - start, time.process_time() - cpu


async def agent(url: str, nodes: int, seconds: float) -> tuple[int, float]:
    """Samples emitted by the OpcuaConnector in ``seconds``, and the CPU seconds used."""
    conn = OpcuaConnection(url=url, publishing_interval_ms=INTERVAL_MS)
    device = Device("bench", profile(nodes), Path("bench.toml"), conn, Location())
    sink = CountingSink()
    task = asyncio.create_task(OpcuaConnector(device, "bench").run(sink, lambda: None))
    await asyncio.sleep(1.0)  # connect and warm up
    assert sink.status.state == "connected"
    start, cpu = sink.status.samples, time.process_time()
    await asyncio.sleep(seconds)
    count, used = sink.status.samples - start, time.process_time() - cpu
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sink.status.errors == 0, "the connector reported errors"
    return count, used


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=50)
    add_json_argument(parser)
    args = parser.parse_args()
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # cancelled requests at the end of a run are expected
    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/"
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, args.nodes), daemon=True)
    server.start()
    rates: dict[str, list[float]] = {"bare": [], "agent": []}
    cpu: dict[str, list[float]] = {"bare": [], "agent": []}
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the OPC UA server did not start") from None
                time.sleep(0.1)
        for _ in range(args.rounds):
            for name, run in (("bare", bare), ("agent", agent)):
                count, used = asyncio.run(run(url, args.nodes, args.seconds))
                rates[name].append(count / args.seconds)
                cpu[name].append(used / max(count, 1) * 1e6)
    finally:
        server.terminate()
        server.join(5)
    print(f"{args.nodes} variables changed as fast as the server can; medians of {args.rounds} rounds "
          f"of {args.seconds:g} s:")
    for name in ("bare", "agent"):
        print(f"  {name:5s}: {median(rates[name]):8.0f} notifications/s, {median(cpu[name]):6.1f} us CPU each")
    print(f"agent / bare asyncua: {median(rates['agent']) / median(rates['bare']):.2f} "
          f"(CPU per notification {median(cpu['agent']) / median(cpu['bare']):.2f}x)")
    agent_rate, bare_rate = median(rates["agent"]), median(rates["bare"])
    write_rows(args.json, [
        Row("OPC UA subscription", f"OpcuaConnector notifications of {args.nodes} changing variables",
            round(agent_rate), "notifications/s", round(bare_rate), "notifications/s (bare asyncua subscriber)",
            round(agent_rate / bare_rate, 2), ">= 0.8", agent_rate / bare_rate >= 0.8,
            extra={"agent_cpu_us": round(median(cpu["agent"]), 1), "bare_cpu_us": round(median(cpu["bare"]), 1)}),
    ])


if __name__ == "__main__":
    main()
