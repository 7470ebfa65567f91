"""``edge-sim``: run the simulated plant, or just an MQTT broker.

::

    edge-sim plant [--seed 42] [--cnc 2] [--lines 1] [--sensors 2] [--host 127.0.0.1]
                   [--modbus-port 5020] [--opcua-port 4840] [--mqtt-url auto|mqtt://host:port|none]
                   [--publish-interval 1.0] [--speed 1.0] [--duration S] [--quiet]
    edge-sim broker [--host 127.0.0.1] [--port 1883]

Ctrl-C or SIGTERM stops cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from simulators.broker import embedded_broker
from simulators.plant import DEFAULT_SENSOR_LIFE_S, Plant
from simulators.runner import PlantHandle, plant_running


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-sim", description="Simulated plant for the edge agent.")
    sub = parser.add_subparsers(dest="command", required=True)

    plant = sub.add_parser("plant", help="serve CNC machines (Modbus TCP), lines (OPC UA), sensors (MQTT)")
    plant.add_argument("--seed", type=int, default=42)
    plant.add_argument("--cnc", type=int, default=2, help="CNC machines, Modbus unit ids 1..N")
    plant.add_argument("--lines", type=int, default=1, help="packaging lines on OPC UA")
    plant.add_argument("--sensors", type=int, default=2, help="vibration sensors on MQTT")
    plant.add_argument("--waveform-sensors", type=int, default=0,
                       help="vibration sensors publishing raw acceleration windows (profile vibration_waveform)")
    plant.add_argument("--host", default="127.0.0.1", help="address the servers bind to")
    plant.add_argument("--modbus-port", type=_port, default=5020)
    plant.add_argument("--opcua-port", type=_port, default=4840)
    plant.add_argument(
        "--mqtt-url", default="auto",
        help="broker to publish to; 'auto': 127.0.0.1:1883 if reachable, else an embedded one; 'none': off",
    )
    plant.add_argument("--publish-interval", type=_positive, default=1.0, help="seconds between readings")
    plant.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    plant.add_argument("--sensor-life", type=_positive, default=DEFAULT_SENSOR_LIFE_S,
                       help="simulated seconds until vib-1's bearing reaches the danger level")
    plant.add_argument("--duration", type=_positive, default=None, help="stop after this many seconds")
    plant.add_argument("--quiet", action="store_true", help="do not print machine state changes")

    broker = sub.add_parser("broker", help="run an embedded MQTT broker (amqtt)")
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--port", type=_port, default=1883)
    broker.add_argument("--duration", type=_positive, default=None, help=argparse.SUPPRESS)
    return parser


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _wait(stop: asyncio.Event, duration: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), duration)


def _print_endpoints(handle: PlantHandle) -> None:
    plant = handle.plant
    if handle.modbus_url:
        units = ", ".join(f"{name}=unit {unit}" for name, unit in handle.unit_ids.items())
        print(f"modbus  {handle.modbus_url}  {units}  (profile cnc_vmc)", flush=True)
    if handle.opcua_url:
        lines = ", ".join(f"{m.name} (ns=2;s={m.name}.*)" for m in plant.lines)
        print(f"opcua   {handle.opcua_url}  {lines}  (profile packaging_line)", flush=True)
    if handle.mqtt_url:
        kind = "embedded amqtt broker" if handle.embedded_broker else "broker"
        topics = ", ".join(handle.topics.values())
        profiles = "vibration_sensor" + (", vibration_waveform" if plant.waveform_sensors else "")
        print(f"mqtt    {handle.mqtt_url} ({kind})  {topics}  (profiles {profiles})", flush=True)


async def _watch_states(plant: Plant, stop: asyncio.Event) -> None:
    """Print every state change of the CNC machines and lines."""
    seen = {m.name: len(m.log) for m in [*plant.cnc, *plant.lines]}
    while not stop.is_set():
        await _wait(stop, 0.5)
        for m in [*plant.cnc, *plant.lines]:
            for iv in m.log[seen[m.name]:]:
                reason = f" reason {iv.reason} ({m.reasons.get(iv.reason, '?')})" if iv.reason else ""
                category = m.categories.get(iv.state, "")
                print(f"t={iv.start:9.1f}s  {m.name}: state {iv.state} {category}{reason}", flush=True)
            seen[m.name] = len(m.log)


async def _run_plant(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    _install_stop(stop)
    mqtt_url = None if args.mqtt_url.lower() == "none" else args.mqtt_url
    try:
        async with plant_running(
            seed=args.seed, cnc=args.cnc, lines=args.lines, sensors=args.sensors, host=args.host,
            modbus_port=args.modbus_port, opcua_port=args.opcua_port, mqtt_url=mqtt_url,
            publish_interval_s=args.publish_interval, speed=args.speed, sensor_life_s=args.sensor_life,
            waveform_sensors=args.waveform_sensors,
        ) as handle:
            _print_endpoints(handle)
            async with asyncio.TaskGroup() as tg:
                if not args.quiet:
                    tg.create_task(_watch_states(handle.plant, stop))
                await _wait(stop, args.duration)
                stop.set()
    except OSError as exc:
        print(f"edge-sim: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run_broker(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    _install_stop(stop)
    try:
        async with embedded_broker(args.port, args.host) as url:
            print(f"mqtt    {url} (embedded amqtt broker)", flush=True)
            await _wait(stop, args.duration)
    except Exception as exc:
        print(f"edge-sim: cannot run the broker on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "cnc", 0) < 0 or getattr(args, "lines", 0) < 0 or getattr(args, "sensors", 0) < 0:
        print("edge-sim: machine counts must be >= 0", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = _run_plant if args.command == "plant" else _run_broker
    try:
        return asyncio.run(runner(args))
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the handlers were installed
        return 0


if __name__ == "__main__":
    sys.exit(main())
