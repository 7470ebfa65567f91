"""``edge-agent demo``: the simulated plant, a collector and the agent on this machine.

The plant and the collector run as child processes (as they would on other hosts);
the agent runs in this process with the demo config, its ports moved where the
defaults are taken. With ``--duration`` it stops by itself and prints a JSON
summary; the exit code says whether every device delivered data end to end.

Unless ``--no-mes-operators`` is given, a simulated MES (:mod:`simulators.mes`)
posts part-flow events to the collector -- the plant model's last
:data:`MES_HISTORY_S` seconds first, then the parts the agent counts -- and a
simulated operator (:mod:`simulators.operators`) logs in to the status page and
acknowledges or shelves alarms, so the collector's fleet page has funnels,
cohorts and operator behaviour to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from edge_agent.buffer.store import Buffer
from edge_agent.config import AgentConfig, load_config
from edge_agent.connectors.modbus.config import ModbusConnection
from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.errors import ConfigError

log = logging.getLogger("edge_agent.demo")

PLANT_SEED = 42
MES_HISTORY_S = 24 * 3600.0
"""How much of the plant model's past the simulated MES posts when the demo starts."""
MES_GATEWAY = "mes"
DEMO_OPERATOR = ("operator", "operator")
"""The demo config's operator login (examples/plant.toml)."""
OPERATOR_TIME_SCALE = 0.1
"""The simulated operator acts ten times faster than a person (a demo lasts minutes, not shifts)."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pick_port(preferred: int) -> int:
    return preferred if port_free(preferred) else free_port()


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, what: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on {host}:{port}")
        if reachable(host, port, 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


@dataclasses.dataclass
class Ports:
    modbus: int
    opcua: int
    agent: int
    collector: int
    mqtt_url: str


def adapt_config(config: AgentConfig, ports: Ports, data_dir: Path, api_key: str) -> AgentConfig:
    """Point the demo config's devices and collector at the ports actually used."""
    devices = []
    for device in config.devices:
        conn = device.connection
        if isinstance(conn, ModbusConnection):
            conn = conn.model_copy(update={"host": "127.0.0.1", "port": ports.modbus})
        elif isinstance(conn, OpcuaConnection):
            conn = conn.model_copy(update={"url": f"opc.tcp://127.0.0.1:{ports.opcua}/"})
        elif isinstance(conn, MqttConnection):
            conn = conn.model_copy(update={"broker": ports.mqtt_url})
        devices.append(dataclasses.replace(device, connection=conn))
    collector = None
    if config.collector is not None:
        collector = config.collector.model_copy(
            update={"url": f"http://127.0.0.1:{ports.collector}", "api_key": api_key}
        )
    http = config.http.model_copy(update={"listen": f"127.0.0.1:{ports.agent}"})
    return dataclasses.replace(
        config, devices=tuple(devices), collector=collector, http=http, data_dir=data_dir / "agent"
    )


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    log_file = log_path.open("ab")
    return subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes], what: str) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in 10 s, killing it", what)
        proc.kill()
        proc.wait()


def run_demo(
    config_path: Path, data_dir: Path, duration: float | None, fresh: bool, broker: str = "auto",
    mes_operators: bool = True,
) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir.resolve()
    api_key = "demo-key"
    procs: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        if broker not in ("auto", "embedded"):
            mqtt_url = broker
        elif broker == "auto" and reachable("127.0.0.1", 1883):
            mqtt_url = "mqtt://127.0.0.1:1883"
        else:
            broker_port = free_port()
            mqtt_url = f"mqtt://127.0.0.1:{broker_port}"
            broker_proc = _spawn([sys.executable, "-m", "simulators", "broker", "--port", str(broker_port)],
                                 data_dir / "broker.log")
            procs.append((broker_proc, "embedded MQTT broker"))
            wait_port("127.0.0.1", broker_port, "embedded MQTT broker", broker_proc)
        ports = Ports(
            modbus=pick_port(5020), opcua=pick_port(4840), agent=pick_port(8080),
            collector=pick_port(8081), mqtt_url=mqtt_url,
        )
        collector = _spawn([
            sys.executable, "-m", "cloud_sync.collector", "serve",
            "--db", f"sqlite:///{data_dir / 'collector.sqlite'}",
            "--listen", f"127.0.0.1:{ports.collector}", "--api-key", api_key,
        ], data_dir / "collector.log")
        procs.append((collector, "collector"))
        cnc = sum(1 for d in config.devices if d.protocol == "modbus")
        lines = sum(1 for d in config.devices if d.protocol == "opcua")
        waveform = sum(1 for d in config.devices if d.profile.profile.name == "vibration_waveform")
        sensors = sum(1 for d in config.devices if d.protocol == "mqtt") - waveform
        plant = _spawn([
            sys.executable, "-m", "simulators", "plant", "--seed", str(PLANT_SEED),
            "--cnc", str(max(cnc, 1)), "--lines", str(max(lines, 1)), "--sensors", str(max(sensors, 1)),
            "--waveform-sensors", str(waveform),
            "--modbus-port", str(ports.modbus), "--opcua-port", str(ports.opcua), "--mqtt-url", mqtt_url,
        ], data_dir / "plant.log")
        procs.append((plant, "simulated plant"))
        wait_port("127.0.0.1", ports.collector, "collector", collector)
        wait_port("127.0.0.1", ports.modbus, "simulated plant (Modbus)", plant)
        wait_port("127.0.0.1", ports.opcua, "simulated plant (OPC UA)", plant)
        agent_config = adapt_config(config, ports, data_dir, api_key)
        print(f"simulated plant: modbus tcp://127.0.0.1:{ports.modbus}, "
              f"opc.tcp://127.0.0.1:{ports.opcua}/, {mqtt_url}", file=sys.stderr)
        print(f"collector:   http://127.0.0.1:{ports.collector}/api/v1/stats", file=sys.stderr)
        print(f"fleet page:  http://127.0.0.1:{ports.collector}/#key={api_key}", file=sys.stderr)
        print(f"status page: http://127.0.0.1:{ports.agent}/", file=sys.stderr)
        if duration is None:
            print("press Ctrl-C to stop", file=sys.stderr)
        people = People(api_key, cnc) if mes_operators else None
        summary = asyncio.run(_run_agent(agent_config, ports, duration, people))
    except (RuntimeError, OSError) as exc:
        print(f"demo failed: {exc} (logs in {data_dir})", file=sys.stderr)
        return 1
    finally:
        for proc, what in reversed(procs):
            _stop(proc, what)
    if summary is None:
        return 0
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


@dataclasses.dataclass
class People:
    """The simulated MES and operator of the demo, and what they did."""

    api_key: str
    cnc: int
    stop: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = dataclasses.field(default_factory=list)

    def start(self, config: AgentConfig, ports: Ports) -> None:
        from simulators.mes import run_mes
        from simulators.operators import OperatorModel, run_operator

        agent_url = f"http://127.0.0.1:{ports.agent}"
        self.tasks.append(asyncio.create_task(run_mes(
            f"http://127.0.0.1:{ports.collector}", self.api_key, self.stop, agent_url=agent_url, seed=PLANT_SEED,
            plant_seed=PLANT_SEED, cnc=max(self.cnc, 1), history_s=MES_HISTORY_S, gateway=MES_GATEWAY,
        ), name="simulated-mes"))
        name, password = DEMO_OPERATOR
        if any(u.name == name for u in config.users):
            model = OperatorModel(PLANT_SEED, time_scale=OPERATOR_TIME_SCALE)
            self.tasks.append(asyncio.create_task(
                run_operator(agent_url, name, password, model, self.stop), name="simulated-operator"))
        else:
            log.info("no user %r in the config: no simulated operator", name)

    async def finish(self) -> dict[str, Any]:
        """Stop both and collect what they did (``{"mes": {...}, "operator": {...}}``)."""
        self.stop.set()
        out: dict[str, Any] = {}
        for task in self.tasks:
            try:
                stats = await asyncio.wait_for(task, timeout=15)
            except Exception as exc:  # a simulated person failing must not fail the demo
                log.warning("%s failed: %s", task.get_name(), exc)
                continue
            out["mes" if task.get_name() == "simulated-mes" else "operator"] = stats.as_dict()
        return out


async def _run_agent(
    config: AgentConfig, ports: Ports, duration: float | None, people: People | None = None
) -> dict[str, Any] | None:
    from edge_agent.supervisor import Agent

    agent = Agent(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.stop)
    started = time.time()
    run = asyncio.create_task(agent.run())
    ready = asyncio.create_task(agent.ready.wait())
    await asyncio.wait([run, ready], return_when=asyncio.FIRST_COMPLETED)
    if people is not None and ready.done():
        people.start(config, ports)
    if duration is None:
        await run
        if people is not None:
            await people.finish()
        return None
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(run), timeout=duration)
    acted = await people.finish() if people is not None else {}
    agent.stop()
    await run
    ready.cancel()
    buffer = Buffer(config.data_dir / "buffer.sqlite")
    stats_buffer = buffer.stats()
    buffer.close()
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{ports.collector}/api/v1/stats")
        stats = response.json()["gateways"].get(config.gateway_id, {})
    devices = {
        name: {"protocol": sink.status.protocol, "samples": sink.status.samples, "errors": sink.status.errors,
               "last_error": sink.status.last_error}
        for name, sink in agent.sinks.items()
    }
    summary: dict[str, Any] = {
        "gateway_id": config.gateway_id,
        "duration_s": round(time.time() - started, 1),
        "samples_stored": stats_buffer.last_seq["samples"],
        "events_stored": stats_buffer.last_seq["events"],
        "samples_unsynced": stats_buffer.unsynced["samples"],
        "samples_received": stats.get("samples", 0),
        "events_received": stats.get("events", 0),
        "batches_received": stats.get("batches", 0),
        "duplicate_batches": stats.get("duplicate_batches", 0),
        "devices": devices,
        "status_url": f"http://127.0.0.1:{ports.agent}/",
        "collector_url": f"http://127.0.0.1:{ports.collector}/",
        **acted,
    }
    summary["ok"] = bool(
        summary["samples_stored"] > 0
        and summary["samples_received"] > 0
        and all(sink.status.samples > 0 for sink in agent.sinks.values())
    )
    return summary
