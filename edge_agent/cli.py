"""Command line: ``edge-agent run | check | demo``.

Library errors become CLI messages here and nowhere else: a ConfigError prints one
line per problem and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError, StoreError

EXIT_CONFIG = 2


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # the connectors report device failures once through their sink; the libraries would log each retry
    quiet = logging.DEBUG if level == "debug" else logging.CRITICAL
    for library in ("asyncua", "pymodbus"):
        logging.getLogger(library).setLevel(quiet)
    for noisy in ("apscheduler", "httpx", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _load(path: str) -> AgentConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    print(f"{config.path}: OK")
    print(f"gateway {config.gateway_id}, data in {config.data_dir}, status page on http://{config.http.listen}/")
    if config.collector:
        print(f"collector {config.collector.url} (batches of {config.collector.batch_size}, "
              f"every {config.collector.interval_s:g} s)")
    else:
        print("collector: none (data stays in the local buffer)")
    for device in config.devices:
        conn = device.connection.model_dump(exclude_defaults=True, exclude={"password"})
        where = ", ".join(f"{k}={v}" for k, v in conn.items())
        print(f"device {device.name}: {device.protocol}, profile {device.profile.profile.name} "
              f"({device.profile_path}), {where}")
        for tag in device.profile.tags:
            address = {
                k: v for k, v in tag.model_dump(exclude_defaults=True).items()
                if k not in ("name", "description", "unit", "type", "scale", "offset")
            }
            addr = " ".join(f"{k}={v}" for k, v in address.items())
            unit = f" [{tag.unit}]" if tag.unit else ""
            print(f"  {tag.name:<16} {tag.type:<8}{unit} {addr}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    setup_logging(args.log_level or config.log_level)
    try:
        asyncio.run(run_agent(config))
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


async def run_agent(config: AgentConfig) -> None:
    from edge_agent.supervisor import Agent

    agent = Agent(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, agent.stop)
    await agent.run()


def cmd_demo(args: argparse.Namespace) -> int:
    from edge_agent.demo import run_demo

    setup_logging(args.log_level or "info")
    return run_demo(
        config_path=Path(args.config), data_dir=Path(args.data_dir), duration=args.duration, fresh=args.fresh,
        broker=args.broker,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description="Edge IoT gateway agent")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent with a config file")
    run.add_argument("--config", "-c", required=True, help="agent config (TOML)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate a config and its profiles, print the resolved devices")
    check.add_argument("--config", "-c", required=True, help="agent config (TOML)")
    check.set_defaults(func=cmd_check)

    demo = sub.add_parser("demo", help="run the simulated plant, a collector and the agent together")
    demo.add_argument("--config", default="examples/plant.toml", help="demo agent config")
    demo.add_argument("--data-dir", default=".demo-data", help="where the agent buffer and collector DB live")
    demo.add_argument("--duration", type=float, help="stop after S seconds and print a JSON summary")
    demo.add_argument("--broker", default="auto",
                      help="MQTT broker: auto (127.0.0.1:1883 if reachable, else embedded), embedded, or a URL")
    demo.add_argument("--fresh", action="store_true", help="start with empty buffer and collector database")
    demo.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
