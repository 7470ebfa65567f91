"""Side by side with ThingsBoard IoT Gateway: the same plant, the same load, one after the other.

    python bench/peers/thingsboard.py [--quick] [--json] [--scenarios LIST] [--tb-storage LIST]

It installs the PyPI package ``thingsboard-gateway`` (3.8.x) into its own venv under
``bench/.peers/thingsboard/`` (git-ignored; pass ``--reinstall`` to recreate it), together with the
pymodbus version its Modbus connector would otherwise pip-install at import time.

Load, the same for both gateways (fresh processes for every run):

* ``modbus-100ms`` / ``modbus-1000ms``: 10 Modbus TCP devices (unit ids 1-10 on one pymodbus
  server in a child process), 50 tags each (uint16, int16, float32, uint32 registers and coils),
  polled every 100 ms / 1,000 ms;
* ``mqtt-2000`` / ``mqtt-5000`` / ``mqtt-10000`` (any ``mqtt-<msgs/s>``): four publishers in child
  processes (MQTT packets written on a plain socket, see :func:`publish_load`) sending JSON messages
  (QoS 1, five datapoints each: ``seq`` and four values) from 10 sensors at 2,000 / 5,000 / 10,000
  messages/s in total to a Mosquitto started by this script; offered = the messages the broker
  acknowledged (less than asked when the machine cannot keep up). ``--load-only`` measures what the
  publishers offer with no gateway attached.

Upstream:

* ThingsBoard gateway: a second Mosquitto started by this script (its MQTT API, access token as
  user name); a paho subscriber counts the datapoints of ``v1/gateway/telemetry``;
* our agent: our collector (SQLite) in a child process; datapoints = its ``samples`` counter.

Figures per run, over the steady-state window after a warm-up: delivered datapoints/s, CPU
(process CPU seconds / wall seconds, the gateway's process tree) and peak RSS (VmHWM). Then the
outage run: the ``mqtt-2000`` load; after a while the upstream (the second Mosquitto / our
collector) is stopped for 30 s (10 s with ``--quick``) and started again; once the publishers have
stopped and deliveries have settled (nothing new for 5 s and, for ours, an empty backlog in the
agent; at most 300 s, 60 s with ``--quick``), the delivered ``seq`` values are counted: unique,
duplicates, lost (expected = every seq from the first delivered to the last acknowledged by the
broker), with the largest runs of missing seqs.
Ratios are ours / theirs. Everything runs on this machine; see docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.peers.plan import (  # noqa: E402
    MQTT_PUBACK,
    TB_RPC_REQUEST_TOPIC,
    TB_TELEMETRY_TOPIC,
    Delivery,
    ModbusPlant,
    MqttLoad,
    UpstreamCounter,
    agent_config,
    agent_modbus_devices,
    agent_modbus_profile,
    agent_mqtt_devices,
    agent_mqtt_profile,
    delivery,
    missing_ranges,
    mqtt_connect_packet,
    mqtt_publish_qos1,
    mqtt_split_packets,
    mqtt_topic_field,
    rate,
    ratio,
    render_table,
    tb_gateway_config,
    tb_modbus_config,
    tb_mqtt_config,
    tb_required_pymodbus,
    tb_rpc_reply,
)

PEER_DIR = ROOT / "bench" / ".peers" / "thingsboard"
TB_SPEC = "thingsboard-gateway>=3.8,<3.9"
SCENARIOS = ("modbus-100ms", "modbus-1000ms", "mqtt-2000", "mqtt-5000", "mqtt-10000")
HOST = "127.0.0.1"
API_KEY = "bench-key"
TB_TOKEN = "bench-token"
PUBLISHERS = 4  # load generator processes, each publishing a quarter of the rate


class BenchError(Exception):
    """A precise reason why a run could not be made."""


# -- the ThingsBoard gateway install -----------------------------------------------------------


@dataclass(frozen=True)
class TbInstall:
    python: Path
    version: str
    package_dir: Path


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BenchError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def ensure_thingsboard(spec: str, reinstall: bool) -> TbInstall:
    """The venv with the ThingsBoard gateway, created and installed when missing."""
    venv = PEER_DIR / "venv"
    python = venv / "bin" / "python"
    if reinstall and venv.exists():
        shutil.rmtree(venv)
    if not python.exists():
        print(f"installing {spec} into {venv.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
        PEER_DIR.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(venv)], "creating the venv")
        _run([str(python), "-m", "pip", "install", "-q", spec], f"pip install {spec}")
    probe = ("import pathlib, thingsboard_gateway, thingsboard_gateway.version as v; "
             "print(v.VERSION); print(pathlib.Path(thingsboard_gateway.__file__).parent)")
    version, package_dir = _run([str(python), "-c", probe], "importing thingsboard_gateway").split()[:2]
    connector = Path(package_dir) / "connectors" / "modbus" / "modbus_connector.py"
    wanted = tb_required_pymodbus(connector.read_text()) if connector.exists() else None
    if wanted is None:
        raise BenchError(f"cannot find the pymodbus version its Modbus connector requires in {connector}")
    check = (f"import pymodbus, serial_asyncio, paho.mqtt; "
             f"assert pymodbus.__version__ == {wanted!r}, pymodbus.__version__")
    if subprocess.run([str(python), "-c", check], capture_output=True).returncode != 0:
        # it would pip-install these at import time; do it now so the runs measure the gateway only
        _run([str(python), "-m", "pip", "install", "-q", f"pymodbus=={wanted}", "pyserial", "pyserial-asyncio",
              "paho-mqtt"], "installing the ThingsBoard Modbus connector's dependencies")
    return TbInstall(python, version, Path(package_dir))


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, alive: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            if not alive():
                raise BenchError(f"{what} exited before listening on port {port}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"{what} did not listen on port {port} within {timeout:.0f} s") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class Mosquitto:
    """A Mosquitto of this bench on a free port; with ``persistent`` its sessions survive a restart."""

    def __init__(self, folder: Path, persistent: bool) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise BenchError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        folder.mkdir(parents=True, exist_ok=True)
        conf = [f"listener {self.port} {HOST}", "allow_anonymous true", "max_queued_messages 2000000",
                "max_queued_bytes 0", "max_inflight_messages 1000"]
        if os.geteuid() == 0:
            conf.insert(0, "user root")
        if persistent:
            conf += ["persistence true", f"persistence_location {folder}/", "autosave_interval 3600"]
        else:
            conf.append("persistence false")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(conf) + "\n")

    def start(self) -> Mosquitto:
        log = open(self.folder / "mosquitto.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()
        proc = self.proc
        wait_port(self.port, lambda: proc.poll() is None, "mosquitto")
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def serve_plant(port: int, devices: int, holding: int, coils: int) -> None:
    """Child process: a pymodbus TCP server answering unit ids 1..devices."""
    import asyncio
    import logging

    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import StartAsyncTcpServer

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    units: dict[int, Any] = {}
    for unit in range(1, devices + 1):
        registers = [(unit * 1000 + i) & 0x7FFF for i in range(max(holding, 1))]
        bits = [bool((unit + i) % 2) for i in range(max(coils, 1))]
        units[unit] = ModbusDeviceContext(
            hr=ModbusSequentialDataBlock(1, registers), ir=ModbusSequentialDataBlock(1, [0] * 8),
            co=ModbusSequentialDataBlock(1, bits), di=ModbusSequentialDataBlock(1, [False] * 8))
    context = ModbusServerContext(devices=units, single=False)
    asyncio.run(StartAsyncTcpServer(context, address=(HOST, port)))


def publish_load(load: MqttLoad, lane: int, lanes: int, stop: MpEvent, published: Synchronized[int]) -> None:
    """Child process: publisher ``lane`` of ``lanes``, each sending ``load.rate / lanes`` messages/s (QoS 1)
    until ``stop``.

    It writes the MQTT packets itself on a plain socket, the messages due at each tick in one write,
    and counts the PUBACKs it reads (a paho client cost about 45-60 us of CPU per message, which left
    too little of this 2-core machine to the gateway under test at 10,000 msgs/s and more).
    ``published`` counts the messages the broker has acknowledged, not the ones written. At most
    ``window`` messages are unacknowledged; when the broker (or this process) cannot keep up, the
    rate achieved is lower than asked, and that rate is what the bench reports as offered.
    """
    window = 1000
    acked = 0
    sock = socket.create_connection((load.host, load.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(mqtt_connect_packet(f"load-{lane}-{uuid.uuid4().hex[:8]}"))
    connack = b""
    while len(connack) < 4:
        chunk = sock.recv(4 - len(connack))
        if not chunk:
            raise BenchError(f"publisher {lane}: the broker closed the connection before CONNACK")
        connack += chunk
    if connack[0] != 0x20 or connack[3] != 0:
        raise BenchError(f"publisher {lane}: the broker refused the connection (CONNACK {connack.hex()})")
    sock.setblocking(False)
    topics = [mqtt_topic_field(load.topic(seq)) for seq in range(load.sensors)]
    pending = bytearray()

    def read_acks(timeout: float) -> None:
        nonlocal acked
        if not select.select([sock], [], [], timeout)[0]:
            return
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            raise BenchError(f"publisher {lane}: the broker closed the connection")
        pending.extend(chunk)
        types, used = mqtt_split_packets(pending)
        del pending[:used]
        acked += sum(1 for t in types if t == MQTT_PUBACK)
        published.value = acked

    start = time.monotonic()
    rate_ = load.rate / lanes
    index = 0
    while not stop.is_set():
        due = min(int((time.monotonic() - start) * rate_), acked + window)
        if index < due:
            now = time.time()
            packets = []
            for _ in range(min(due - index, 500)):
                seq = load.seq(lane, lanes, index)
                packets.append(mqtt_publish_qos1(topics[seq % load.sensors],
                                                 orjson.dumps(load.message(seq, now)), index % 0xFFFF + 1))
                index += 1
            sock.setblocking(True)
            sock.sendall(b"".join(packets))
            sock.setblocking(False)
        read_acks(0.0 if index < due else 0.002)
    deadline = time.monotonic() + 30
    while acked < index and time.monotonic() < deadline:
        read_acks(0.05)
    sock.setblocking(True)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()


# -- /proc -------------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid``'s process tree (with its reaped children)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def peak_rss_mb(pid: int) -> float:
    """Sum of VmHWM over ``pid``'s process tree, MiB."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# -- the two gateways --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    poll_ms: int = 0
    rate: int = 0

    @property
    def kind(self) -> str:
        return "modbus" if self.poll_ms else "mqtt"


def scenario(name: str) -> Scenario:
    kind, _, value = name.partition("-")
    if kind == "modbus" and value.endswith("ms"):
        return Scenario(name, poll_ms=int(value[:-2]))
    if kind == "mqtt" and value.isdigit():
        return Scenario(name, rate=int(value))
    raise argparse.ArgumentTypeError(f"unknown scenario {name!r} (modbus-<poll>ms or mqtt-<msgs/s>)")


class Ours:
    """Our agent in a child process, our collector (SQLite) upstream."""

    name = "ours"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.db = folder / "collector.sqlite"
        self.collector: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://{HOST}:{self.port}"
        self.gateway_id = f"bench-{uuid.uuid4().hex[:6]}"

    def start(self, devices: list[dict[str, Any]], profiles: dict[str, str]) -> None:
        (self.folder / "profiles").mkdir(parents=True, exist_ok=True)
        for name, text in profiles.items():
            (self.folder / "profiles" / f"{name}.toml").write_text(text)
        self.http_port = free_port()
        config = agent_config(data_dir=str(self.folder / "data"), http_port=self.http_port, collector_url=self.url,
                              api_key=API_KEY, devices=devices, gateway_id=self.gateway_id)
        (self.folder / "agent.toml").write_text(config)
        self.upstream_up()
        log = open(self.folder / "agent.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                                      str(self.folder / "agent.toml")], cwd=self.folder, stdout=log, stderr=log)
        log.close()

    def upstream_up(self) -> None:
        log = open(self.folder / "collector.log", "ab")  # noqa: SIM115 - closed with the process
        self.collector = subprocess.Popen(
            [sys.executable, "-m", "cloud_sync.collector", "serve", "--db", f"sqlite:///{self.db}",
             "--listen", f"{HOST}:{self.port}", "--api-key", API_KEY], cwd=ROOT, stdout=log, stderr=log)
        log.close()
        collector = self.collector
        wait_port(self.port, lambda: collector.poll() is None, "our collector")

    def upstream_down(self) -> None:
        stop_process(self.collector)
        self.collector = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def delivered(self) -> int:
        try:
            response = httpx.get(f"{self.url}/api/v1/stats", timeout=5)
            response.raise_for_status()
        except httpx.HTTPError:
            return -1
        return int(response.json()["gateways"].get(self.gateway_id, {}).get("samples", 0))

    def pending(self) -> int | None:
        """Samples in the agent's buffer not yet acknowledged by the collector (None: unknown)."""
        try:
            response = httpx.get(f"http://{HOST}:{self.http_port}/api/v1/status", timeout=5)
            response.raise_for_status()
            return int(response.json()["buffer"]["unsynced"]["samples"])
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            return None

    def seqs(self) -> list[int]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            return [int(v) for (v,) in db.execute("SELECT value FROM samples WHERE tag = 'seq'")]

    def stop(self) -> None:
        stop_process(self.proc)
        self.upstream_down()


class Theirs:
    """The ThingsBoard gateway in a child process, a Mosquitto of this bench as its upstream."""

    name = "thingsboard"

    def __init__(self, folder: Path, install: TbInstall, storage: str) -> None:
        self.folder = folder
        self.install = install
        self.storage = storage
        self.broker = Mosquitto(folder / "upstream", persistent=True)
        self.counter = UpstreamCounter()
        self.subscriber: mqtt.Client | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, connectors: dict[str, dict[str, Any]]) -> None:
        config_dir = self.folder / "config"
        shutil.copytree(self.install.package_dir / "config", config_dir)
        default = json.loads((config_dir / "tb_gateway.json").read_text())
        for kind, doc in connectors.items():
            (config_dir / f"{kind}.json").write_text(json.dumps(doc, indent=1))
        entries = [(kind, f"bench {kind}", f"{kind}.json") for kind in connectors]
        gateway = tb_gateway_config(default, HOST, self.broker.port, TB_TOKEN, entries, self.storage)
        (config_dir / "tb_gateway.json").write_text(json.dumps(gateway, indent=1))
        work = self.folder / "work"
        (work / "logs").mkdir(parents=True, exist_ok=True)
        (work / "data").mkdir(exist_ok=True)
        self.broker.start()
        self._subscribe()
        env = {**os.environ, "TB_GW_CONFIG_DIR": f"{config_dir}{os.sep}"}
        env.pop("PYTHONPATH", None)
        log = open(self.folder / "tb.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(self.install.python), "-c",
                                      "from thingsboard_gateway.tb_gateway import main; main()"],
                                     cwd=work, env=env, stdout=log, stderr=log)
        log.close()

    def _subscribe(self) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-upstream-counter",
                             clean_session=False)
        client.reconnect_delay_set(1, 2)

        def on_connect(c: mqtt.Client, *_: object) -> None:
            c.subscribe([(TB_TELEMETRY_TOPIC, 1), (TB_RPC_REQUEST_TOPIC + "+", 1)])

        def on_message(c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            if message.topic == TB_TELEMETRY_TOPIC:
                self.counter.add(message.payload)
                return
            reply = tb_rpc_reply(message.topic, message.payload)
            if reply is not None:  # answer as the ThingsBoard server does
                c.publish(reply[0], json.dumps(reply[1]), qos=1)

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect(HOST, self.broker.port)
        client.loop_start()
        self.subscriber = client

    def upstream_up(self) -> None:
        self.broker.start()

    def upstream_down(self) -> None:
        self.broker.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def delivered(self) -> int:
        return self.counter.total()

    def pending(self) -> int | None:
        """Unknown: its storage is not visible from outside (only in its minutely statistics)."""
        return None

    def seqs(self) -> list[int]:
        return self.counter.seq_snapshot()

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT, timeout=20)  # it stops on SIGINT
        if self.subscriber is not None:
            self.subscriber.loop_stop()
            self.subscriber.disconnect()
        self.broker.stop()


Gateway = Ours | Theirs


# -- runs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    warmup_s: float
    measure_s: float
    outage_s: float
    before_outage_s: float
    after_outage_s: float
    start_timeout_s: float = 90.0
    settle_s: float = 5.0
    drain_max_s: float = 300.0


class Load:
    """The load of one run: the Modbus server or the MQTT broker and publisher, in child processes."""

    def __init__(self, folder: Path, sc: Scenario) -> None:
        self.sc = sc
        self.ctx = multiprocessing.get_context("spawn")
        self.server: Any = None
        self.broker: Mosquitto | None = None
        self.publishers: list[Any] = []
        self.stop_event = self.ctx.Event()
        self.lanes = PUBLISHERS
        self.counts = [self.ctx.Value("q", 0) for _ in range(self.lanes)]
        self.plant = ModbusPlant(HOST, free_port())
        if sc.kind == "mqtt":
            self.broker = Mosquitto(folder / "load-broker", persistent=False)
            self.mqtt = MqttLoad(HOST, self.broker.port, sc.rate)
        else:
            self.mqtt = MqttLoad(HOST, 0, 0)

    def start_source(self) -> None:
        """The Modbus server or the broker: what the gateway connects to."""
        if self.broker is not None:
            self.broker.start()
            return
        plant = self.plant
        self.server = self.ctx.Process(target=serve_plant, daemon=True,
                                       args=(plant.port, plant.devices, plant.holding_size(), plant.coil_size()))
        self.server.start()
        wait_port(plant.port, self.server.is_alive, "the Modbus server")

    def start_publisher(self) -> None:
        if self.broker is not None:
            self.publishers = [self.ctx.Process(target=publish_load, daemon=True,
                                                args=(self.mqtt, lane, self.lanes, self.stop_event, self.counts[lane]))
                               for lane in range(self.lanes)]
            for proc in self.publishers:
                proc.start()

    def published(self) -> list[int]:
        """Messages acknowledged by the broker, per publisher."""
        return [int(c.value) for c in self.counts]

    def stop_publisher(self) -> list[int]:
        self.stop_event.set()
        for proc in self.publishers:
            proc.join(60)
            if proc.is_alive():
                proc.terminate()
        self.publishers = []
        return self.published()

    def offered(self, window: list[tuple[float, float]]) -> float:
        if self.sc.kind == "modbus":
            return self.plant.datapoints_per_s(self.sc.poll_ms)
        return rate(window, window[0][0], window[-1][0]) * self.mqtt.datapoints_per_message

    def load_cpu(self) -> float:
        procs = [self.server] if self.server is not None else self.publishers
        return sum(cpu_seconds(p.pid) for p in procs if p.pid is not None)

    def stop(self) -> None:
        self.stop_publisher()
        if self.server is not None:
            self.server.terminate()
            self.server.join(10)
        if self.broker is not None:
            self.broker.stop()


def make_gateway(which: str, folder: Path, install: TbInstall | None, storage: str) -> Gateway:
    if which == "ours":
        return Ours(folder)
    assert install is not None
    return Theirs(folder, install, storage)


def start_gateway(gw: Gateway, load: Load) -> None:
    sc = load.sc
    if isinstance(gw, Ours):
        if sc.kind == "modbus":
            gw.start(agent_modbus_devices(load.plant, sc.poll_ms), {"bench_plc": agent_modbus_profile(load.plant)})
        else:
            gw.start(agent_mqtt_devices(load.mqtt), {"bench_sensor": agent_mqtt_profile(load.mqtt)})
    else:
        gw.start({"modbus": tb_modbus_config(load.plant, sc.poll_ms)} if sc.kind == "modbus"
                 else {"mqtt": tb_mqtt_config(load.mqtt)})


def wait_first(gw: Gateway, timeout: float) -> float:
    """Seconds until the first datapoint arrives upstream."""
    start = time.monotonic()
    while gw.delivered() <= 0:
        if not gw.alive():
            raise BenchError(f"{gw.name}: the gateway exited (see its log in the run folder)")
        if time.monotonic() - start > timeout:
            raise BenchError(f"{gw.name}: no datapoint upstream within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - start


def steady(which: str, sc: Scenario, timing: Timing, install: TbInstall | None, storage: str,
           folder: Path) -> dict[str, Any]:
    """Delivered datapoints/s, CPU and peak RSS of one gateway under one load."""
    load = Load(folder, sc)
    gw = make_gateway(which, folder, install, storage)
    try:
        load.start_source()
        start_gateway(gw, load)
        load.start_publisher()
        startup = wait_first(gw, timing.start_timeout_s)
        time.sleep(timing.warmup_s)
        delivered: list[tuple[float, float]] = []
        published: list[tuple[float, float]] = []
        cpu: list[tuple[float, float]] = []
        load_cpu0, t_start = load.load_cpu(), time.monotonic()
        end = t_start + timing.measure_s
        while True:
            now = time.monotonic()
            delivered.append((now, float(gw.delivered())))
            published.append((now, float(sum(load.published()))))
            cpu.append((now, cpu_seconds(gw.pid)))
            if now >= end:
                break
            time.sleep(min(0.5, max(0.0, end - now)))
        load_cpu = (load.load_cpu() - load_cpu0) / (time.monotonic() - t_start)
        if not gw.alive():
            raise BenchError(f"{gw.name}: the gateway exited during the run")
        t0, t1 = delivered[0][0], delivered[-1][0]
        return {"gateway": which, "scenario": sc.name, "offered_dps": load.offered(published),
                "delivered_dps": rate(delivered, t0, t1), "cpu": rate(cpu, t0, t1),
                "peak_rss_mb": peak_rss_mb(gw.pid), "startup_s": startup, "load_cpu": load_cpu}
    finally:
        gw.stop()
        load.stop()


def load_alone(sc: Scenario, timing: Timing, folder: Path) -> dict[str, Any]:
    """What the MQTT publishers offer with no gateway attached: messages/s acknowledged by the broker,
    and the CPU of the publishers and of the broker."""
    if sc.kind != "mqtt":
        raise BenchError(f"{sc.name}: --load-only measures MQTT loads only")
    load = Load(folder, sc)
    try:
        load.start_source()
        load.start_publisher()
        time.sleep(timing.warmup_s)
        assert load.broker is not None and load.broker.proc is not None
        broker_pid = load.broker.proc.pid
        t0, count0 = time.monotonic(), sum(load.published())
        cpu0, broker0 = load.load_cpu(), cpu_seconds(broker_pid)
        time.sleep(timing.measure_s)
        elapsed, count = time.monotonic() - t0, sum(load.published()) - count0
        return {"scenario": sc.name, "asked_msgs": sc.rate, "offered_msgs": count / elapsed,
                "offered_dps": count / elapsed * load.mqtt.datapoints_per_message,
                "publishers_cpu": (load.load_cpu() - cpu0) / elapsed,
                "broker_cpu": (cpu_seconds(broker_pid) - broker0) / elapsed}
    finally:
        load.stop()


def outage(which: str, timing: Timing, install: TbInstall | None, storage: str, folder: Path,
           msg_rate: int) -> dict[str, Any]:
    """Loss and duplication of the MQTT load across an upstream outage."""
    sc = Scenario(f"mqtt-{msg_rate}", rate=msg_rate)
    load = Load(folder, sc)
    gw = make_gateway(which, folder, install, storage)
    try:
        load.start_source()
        start_gateway(gw, load)
        load.start_publisher()
        wait_first(gw, timing.start_timeout_s)
        time.sleep(timing.before_outage_s)
        published_at_down = sum(load.published())
        gw.upstream_down()
        time.sleep(timing.outage_s)
        rss_during = peak_rss_mb(gw.pid)
        gw.upstream_up()
        published_at_up = sum(load.published())
        recovered_at = time.monotonic()
        time.sleep(timing.after_outage_s)
        published = load.stop_publisher()
        last, stable_since, deadline = -1, time.monotonic(), time.monotonic() + timing.drain_max_s
        settled = False
        while time.monotonic() < deadline:
            count = gw.delivered()
            if count != last:
                last, stable_since = count, time.monotonic()
            elif time.monotonic() - stable_since >= timing.settle_s and not gw.pending():
                settled = True  # nothing new for settle_s, and nothing left in the gateway when it tells
                break
            time.sleep(0.5)
        drained_s = stable_since - recovered_at
        seqs = gw.seqs()
        result: Delivery = delivery(seqs, published)
        published_total = sum(published)
        return {"gateway": which, "storage": storage if which != "ours" else "sqlite (agent buffer)",
                "published": published_total, **result.as_dict(), "settled": settled,
                "pending_in_gateway": gw.pending(), "published_at_down": published_at_down,
                "published_at_up": published_at_up, "missing_runs": missing_ranges(seqs, published),
                "settled_after_recovery_s": round(drained_s, 1),
                "peak_rss_mb": peak_rss_mb(gw.pid), "rss_end_of_outage_mb": rss_during}
    finally:
        gw.stop()
        load.stop()


# -- main --------------------------------------------------------------------------------------


def summarize(steady_rows: list[dict[str, Any]], outage_rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["scenario"], r["gateway"]): r for r in steady_rows}
    comparison = []
    for name in dict.fromkeys(r["scenario"] for r in steady_rows):
        ours, theirs = by.get((name, "ours")), by.get((name, "thingsboard"))
        row: dict[str, Any] = {"scenario": name}
        for r in (ours, theirs):
            if r and r.get("delivered_dps"):
                r["cpu_us_per_dp"] = r["cpu"] / r["delivered_dps"] * 1e6
        for key in ("offered_dps", "delivered_dps", "cpu", "cpu_us_per_dp", "peak_rss_mb"):
            row[f"{key} ours"] = ours.get(key) if ours else None
            row[f"{key} tb"] = theirs.get(key) if theirs else None
            row[f"{key} ratio"] = ratio(row[f"{key} ours"], row[f"{key} tb"]) if key != "offered_dps" else None
        comparison.append(row)
    return {"steady": steady_rows, "comparison": comparison, "outage": outage_rows}


def print_tables(summary: dict[str, Any]) -> None:
    rows = []
    for c in summary["comparison"]:
        rows.append({"scenario": c["scenario"], "offered ours": c["offered_dps ours"],
                     "offered TB": c["offered_dps tb"], "ours dp/s": c["delivered_dps ours"],
                     "TB dp/s": c["delivered_dps tb"],
                     "dp/s ratio": c["delivered_dps ratio"], "ours CPU": c["cpu ours"], "TB CPU": c["cpu tb"],
                     "CPU ratio": c["cpu ratio"], "CPU us/dp ratio": c["cpu_us_per_dp ratio"],
                     "ours RSS MB": c["peak_rss_mb ours"],
                     "TB RSS MB": c["peak_rss_mb tb"], "RSS ratio": c["peak_rss_mb ratio"]})
    for r in summary["steady"]:
        if "error" in r:
            rows.append({"scenario": f"{r['scenario']} ({r['gateway']}): {r['error']}"})
    print(render_table(rows))
    if summary["outage"]:
        print()
        keys = ("gateway", "storage", "published", "expected", "unique", "duplicates", "lost", "loss_ratio",
                "settled", "settled_after_recovery_s", "peak_rss_mb", "error")
        print(render_table([{k: r.get(k) for k in keys} for r in summary["outage"]]))


def print_load_alone(scenarios: list[Scenario], timing: Timing, as_json: bool) -> None:
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="peer-bench-load-"))
    rows: list[dict[str, Any]] = []
    try:
        for sc in scenarios:
            print(f"{sc.name}: publishers alone ...", file=sys.stderr, flush=True)
            try:
                rows.append(load_alone(sc, timing, tmp / sc.name))
            except BenchError as exc:
                rows.append({"scenario": sc.name, "error": str(exc)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    loadavg = [round(load_before[0], 1), round(os.getloadavg()[0], 1)]
    if as_json:
        print(json.dumps({"load_alone": rows, "loadavg_1m_before_after": loadavg}, indent=1))
    else:
        print(render_table(rows))
        print(f"load average (1 min) before / after: {loadavg[0]} / {loadavg[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short warm-up, window and outage (a few minutes)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    parser.add_argument("--scenarios", type=lambda s: [scenario(x) for x in s.split(",") if x],
                        default=[scenario(s) for s in SCENARIOS], help=f"default: {','.join(SCENARIOS)}")
    parser.add_argument("--tb-storage", default="memory,sqlite",
                        help="ThingsBoard storages for the outage run (memory, sqlite); the steady runs use memory")
    parser.add_argument("--outage-rate", type=int, default=2000, help="messages/s of the outage run")
    parser.add_argument("--no-outage", action="store_true")
    parser.add_argument("--only", choices=["ours", "thingsboard"], help="run one gateway only")
    parser.add_argument("--spec", default=TB_SPEC, help="pip requirement of the ThingsBoard gateway")
    parser.add_argument("--reinstall", action="store_true", help="recreate its venv")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (configs, logs) and print it")
    parser.add_argument("--load-only", action="store_true",
                        help="measure what the MQTT publishers offer with no gateway attached, then exit")
    args = parser.parse_args()
    timing = (Timing(warmup_s=4, measure_s=8, outage_s=10, before_outage_s=5, after_outage_s=5,
                     drain_max_s=60) if args.quick
              else Timing(warmup_s=8, measure_s=20, outage_s=30, before_outage_s=10, after_outage_s=10))
    storages = [s for s in args.tb_storage.split(",") if s]
    for s in storages:
        if s not in ("memory", "sqlite"):
            parser.error(f"--tb-storage: unknown storage {s!r}")
    if args.load_only:
        print_load_alone(args.scenarios, timing, args.json)
        return
    gateways = [args.only] if args.only else ["ours", "thingsboard"]
    try:
        install = ensure_thingsboard(args.spec, args.reinstall) if "thingsboard" in gateways else None
    except BenchError as exc:
        raise SystemExit(f"ThingsBoard IoT Gateway cannot be installed or imported here: {exc}") from None
    if install is not None:
        print(f"thingsboard-gateway {install.version} ({install.python.parent.parent.relative_to(ROOT)})",
              file=sys.stderr)
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="peer-bench-"))
    steady_rows: list[dict[str, Any]] = []
    outage_rows: list[dict[str, Any]] = []
    try:
        for sc in args.scenarios:
            for which in gateways:
                print(f"{sc.name}: {which} ...", file=sys.stderr, flush=True)
                folder = tmp / f"{sc.name}-{which}"
                try:
                    steady_rows.append(steady(which, sc, timing, install, "memory", folder))
                except BenchError as exc:
                    steady_rows.append({"gateway": which, "scenario": sc.name, "error": str(exc)})
        if not args.no_outage:
            runs = [(w, s) for w in gateways for s in (storages if w == "thingsboard" else ["sqlite"])]
            for which, storage in runs:
                print(f"outage {timing.outage_s:g} s at {args.outage_rate} msg/s: {which} {storage} ...",
                      file=sys.stderr, flush=True)
                folder = tmp / f"outage-{which}-{storage}"
                try:
                    outage_rows.append(outage(which, timing, install, storage, folder, args.outage_rate))
                except BenchError as exc:
                    outage_rows.append({"gateway": which, "storage": storage, "error": str(exc)})
    finally:
        if args.keep:
            print(f"run folder: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = summarize(steady_rows, outage_rows)
    summary["conditions"] = {
        "thingsboard_gateway": install.version if install else None, "quick": args.quick,
        "timing": timing.__dict__, "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "plant": "10 Modbus TCP devices x 50 tags (one pymodbus server)",
        "mqtt": "10 sensors, JSON, 5 datapoints/message, QoS 1",
        "loadavg_1m_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print_tables(summary)


if __name__ == "__main__":
    main()
