"""Command line: ``edge-agent run | check | status | demo | analyze | quarantine``.

Library errors become CLI messages here and nowhere else: a ConfigError prints one
line per problem and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import gc
import json
import logging
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError, StoreError
from edge_agent.ops.logs import Overrides

EXIT_CONFIG = 2


LOG_LEVEL_HELP = ("LEVEL, COMPONENT=LEVEL (a logger such as edge_agent.connectors.modbus) or device:NAME=LEVEL; "
                  "repeatable, wins over the config's [logging] table")


def _log_overrides(values: list[str] | None, config: AgentConfig | None = None) -> Overrides | None:
    """The ``--log-level`` options as overrides, or None after printing their problems."""
    from edge_agent.ops.logs import parse_options

    overrides, problems = parse_options(values or [])
    if config is not None:
        names = [d.name for d in config.devices]
        for name in overrides.devices:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (devices: {', '.join(names) or 'none'})"
                problems.append(f"--log-level device:{name}=...: {config.path} has no device named '{name}'{hint}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return None if problems else overrides


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
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
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
    from edge_agent.ops.logs import config_levels, setup

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    overrides = _log_overrides(args.log_level, config)
    if overrides is None:
        return EXIT_CONFIG
    setup(config_levels(config, overrides), args.log_format, overrides)
    for warning in config.warnings:
        logging.getLogger("edge_agent").warning(warning)
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
    loop.add_signal_handler(signal.SIGHUP, agent.request_reload)
    await agent.run(on_ready=_freeze_startup_objects)


def _freeze_startup_objects(agent: object) -> None:
    """Once the agent runs, move the objects made so far (imported modules, config, profiles) out of the
    garbage collector's reach: they live as long as the process, and scanning them again in every full
    collection costs CPU on the ingest path."""
    gc.collect()
    gc.freeze()


def cmd_demo(args: argparse.Namespace) -> int:
    from edge_agent.demo import run_demo
    from edge_agent.ops.logs import resolve, setup

    overrides = _log_overrides(args.log_level)
    if overrides is None:
        return EXIT_CONFIG
    setup(resolve("info", overrides=overrides), args.log_format, overrides)
    return run_demo(
        config_path=Path(args.config), data_dir=Path(args.data_dir), duration=args.duration, fresh=args.fresh,
        broker=args.broker, mes_operators=not args.no_mes_operators,
    )


MAX_ROW_PROBLEMS = 50


def _window_bound(text: str, tz: tzinfo, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--{name}: not an ISO 8601 date and time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def cmd_analyze_oee(args: argparse.Namespace) -> int:
    """OEE of one device from a samples CSV: one JSON object on stdout, problems on stderr."""
    from edge_agent.oee import ALWAYS, OeeError, compute, load_calendar, options_for_profile, read_samples_csv
    from edge_agent.ops.progress import watch_file
    from edge_agent.profiles import available_profiles, load_profile, resolve_profile

    def fail(*problems: str) -> int:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG

    path = resolve_profile(args.profile, Path.cwd(), [])
    if path is None:
        names = sorted(available_profiles([]))
        close = difflib.get_close_matches(args.profile, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (available: {', '.join(names)})"
        return fail(f"--profile: profile '{args.profile}' not found{hint}")
    try:
        profile = load_profile(path)
        calendar = load_calendar(args.calendar) if args.calendar else ALWAYS
    except ConfigError as exc:
        return fail(*exc.problems)
    if profile.oee is None:
        return fail(f"{path}: profile '{profile.profile.name}' has no [oee] table")
    try:
        start = _window_bound(args.from_, calendar.tz, "from")
        end = _window_bound(args.to, calendar.tz, "to")
    except ValueError as exc:
        return fail(str(exc))
    options = options_for_profile(profile, cap_performance=args.cap_performance)
    if args.reason_tag is not None:
        options = replace(options, reason_tag=args.reason_tag or None)
    try:
        with watch_file(args.samples):
            samples = read_samples_csv(args.samples, profile.oee, options, args.device)
        for problem in samples.problems[:MAX_ROW_PROBLEMS]:
            print(problem, file=sys.stderr)
        if len(samples.problems) > MAX_ROW_PROBLEMS:
            print(f"{args.samples}: ... and {len(samples.problems) - MAX_ROW_PROBLEMS} more bad rows",
                  file=sys.stderr)
        result = compute(samples.device_tracks(args.device), calendar, start, end)
    except OeeError as exc:
        return fail(str(exc))
    print(json.dumps(result.as_dict(tz=start.tzinfo or UTC, detail=args.detail)))
    return 0


def cmd_analyze_anomaly(args: argparse.Namespace) -> int:
    from edge_agent.maintenance import DETECTORS, make_detector, write_scores
    from edge_agent.maintenance.analyze import AnomalyInputError, ScoredPoint, read_series_csv, score_values
    from edge_agent.maintenance.nab import probationary_length
    from edge_agent.ops.progress import iterate, watch_file

    if args.detector not in DETECTORS:
        print(f"--detector: unknown detector '{args.detector}' (available: {', '.join(sorted(DETECTORS))})",
              file=sys.stderr)
        return EXIT_CONFIG
    try:  # score_csv's steps, each with its progress bar
        with watch_file(args.input):
            rows = read_series_csv(Path(args.input), args.tag)
        detector = make_detector(args.detector, warmup=probationary_length(len(rows)))
        scores = score_values(iterate((v for _, v in rows), "scoring", len(rows), unit="rows"), detector)
        points = [ScoredPoint(ts, value, score) for (ts, value), score in zip(rows, scores, strict=True)]
    except AnomalyInputError as exc:
        print(f"{args.input}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"{args.input}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    write_scores(points, sys.stdout)
    return 0


RUL_CHUNK = 64  # units per interpreter batch: the bar moves between batches


def cmd_analyze_rul(args: argparse.Namespace) -> int:
    from edge_agent.maintenance.rul import RulError, RulModel
    from edge_agent.maintenance.rul_data import read_units
    from edge_agent.ops.progress import Progress, watch_file

    try:  # predict_units's steps, each with its progress bar
        with watch_file(args.input):
            units = read_units(Path(args.input))
        model = RulModel.load(args.model)
        results = []
        with Progress("predicting", len(units), unit="units") as bar:
            for start in range(0, len(units), RUL_CHUNK):
                results += model.predict_units(units[start:start + RUL_CHUNK])
                bar.set(len(results))
    except RulError as exc:  # input, model or a missing interpreter package: the message names it
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    for row in results:
        print(json.dumps(row))
    return 0


def _add_analyze(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    analyze = sub.add_parser("analyze", help="offline analytics on exported samples")
    kinds = analyze.add_subparsers(dest="analysis", required=True)
    oee = kinds.add_parser(
        "oee", help="OEE of one device over a time window from a samples CSV (prints one JSON object)",
        description="OEE (ISO 22400-2 time model, see docs/oee.md) of one device from a CSV with the "
                    "header ts,device,tag,value. Bad rows are reported on stderr with their line number; "
                    "exit 2 when the inputs cannot be used at all.",
    )
    oee.add_argument("--samples", required=True, metavar="FILE.csv", help="samples CSV (ts,device,tag,value)")
    oee.add_argument("--profile", required=True, help="device profile name or path to a profile .toml")
    oee.add_argument("--from", dest="from_", required=True, metavar="ISO8601",
                     help="window start, ISO 8601 (without offset: the calendar's time zone)")
    oee.add_argument("--to", required=True, metavar="ISO8601", help="window end (exclusive), ISO 8601")
    oee.add_argument("--calendar", metavar="FILE.toml", help="shift calendar (TOML); default: planned 24/7")
    oee.add_argument("--device", metavar="NAME", help="device name in the CSV (needed when the file holds several)")
    oee.add_argument("--reason-tag", metavar="TAG",
                     help="tag carrying the stop reason code (default: stop_reason if the profile has it; '' for none)")
    oee.add_argument("--cap-performance", action="store_true", help="report performance capped at 1")
    oee.add_argument("--detail", action="store_true",
                     help="add the time split, stop counts and the list of stops to the JSON")
    oee.set_defaults(func=cmd_analyze_oee)

    anomaly = kinds.add_parser(
        "anomaly", help="anomaly score of every row of a series (prints CSV timestamp,value,anomaly_score)",
        description="Streaming anomaly detection (see docs/predictive-maintenance.md) over a CSV: NAB's "
                    "timestamp,value files, the agent's ts,device,tag,value export (--tag TAG or DEVICE/TAG), "
                    "or a wide file with one column per tag.",
    )
    anomaly.add_argument("--input", required=True, metavar="FILE.csv", help="the series to score")
    anomaly.add_argument("--tag", metavar="NAME", help="which series of the file (TAG or DEVICE/TAG)")
    anomaly.add_argument("--detector", default="tail-ensemble", help="detector name (default: tail-ensemble)")
    anomaly.set_defaults(func=cmd_analyze_anomaly)

    rul = kinds.add_parser(
        "rul", help="remaining useful life of every unit (prints one JSON line per unit)",
        description="Remaining useful life (see docs/predictive-maintenance.md) from a C-MAPSS text file or the "
                    "agent's ts,device,tag,value export (tags named s2..s21, one unit per device).",
    )
    rul.add_argument("--input", required=True, metavar="FILE", help="C-MAPSS text file or CSV export")
    rul.add_argument("--model", metavar="PATH", help="a .tflite model with its .json card (default: the shipped one)")
    rul.set_defaults(func=cmd_analyze_rul)


def cmd_status(args: argparse.Namespace) -> int:
    """A concise summary of a running agent, read from its local API."""
    import json

    import httpx

    url = args.url
    if url is None:
        config = _load(args.config)
        if config is None:
            return EXIT_CONFIG
        host, port = config.listen
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    try:
        response = httpx.get(url.rstrip("/") + "/api/v1/status", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        print(f"error: no agent answering at {url}: {exc}", file=sys.stderr)
        return 1
    status = response.json()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(format_status(status))
    return 0


def format_status(status: dict[str, Any]) -> str:
    lines = [f"gateway {status['gateway_id']} (version {status['version']}), up {status['uptime_s']:.0f} s"]
    for name, d in sorted(status["devices"].items()):
        error = f"  last error: {d['last_error']}" if d.get("last_error") else ""
        lines.append(f"  {name:<16} {d['protocol']:<8} {d['state']:<13} {d['samples']:>10} samples"
                     f" {d['errors']:>6} errors{error}")
    b = status["buffer"]
    dropped = sum(b.get("dropped", {}).values())
    lines.append(f"buffer: {b['samples_rows']} samples, {b['events_rows']} events, "
                 f"unsynced {b['unsynced'].get('samples', 0)} samples / {b['unsynced'].get('events', 0)} events, "
                 f"dropped {dropped}, {b['file_bytes'] / 1e6:.1f} MB")
    s = status["sync"]
    if s.get("last_result") == "disabled":
        lines.append("sync: no collector configured")
    else:
        when = datetime.fromtimestamp(s["last_success"], UTC).isoformat(timespec="seconds") \
            if s.get("last_success") else "never"
        error = f", error: {s['last_error']}" if s.get("last_error") else ""
        lines.append(f"sync: {s['last_result']}, last success {when}, {s['batches_sent']} batches{error}")
    return "\n".join(lines)


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    """The batches the collector refused for good, read from the agent's buffer file."""
    from edge_agent.buffer.quarantine import QuarantineFile

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    try:
        quarantine = QuarantineFile(config.data_dir / "buffer.sqlite")
        entries = quarantine.entries()
        quarantine.close()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=2))
        return 0
    if not entries:
        print("no quarantined batches")
        return 0
    for e in entries:
        at = datetime.fromtimestamp(e.at, UTC).isoformat(timespec="seconds")
        if e.replayed_at is None:
            replayed = "not replayed"
        else:
            when = datetime.fromtimestamp(e.replayed_at, UTC).isoformat(timespec="seconds")
            replayed = f"replayed {when}: {'delivered' if e.delivered else 'refused'} ({e.replay_status})"
        body = "" if e.body_kept else ", body not kept"
        print(f"{e.id:>5}  {e.batch_id}  {e.rows} rows  {at}  {e.status}: {e.answer[:120]}  [{replayed}{body}]")
    return 0


def cmd_quarantine_replay(args: argparse.Namespace) -> int:
    """Send quarantined batches to the collector again (after it was fixed); each answer is kept."""
    from cloud_sync.uploader import make_client
    from edge_agent.buffer.quarantine import QuarantineFile, replay

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    if config.collector is None:
        print(f"error: {config.path} has no [collector]: nothing to replay to", file=sys.stderr)
        return EXIT_CONFIG
    try:
        quarantine = QuarantineFile(config.data_dir / "buffer.sqlite")
        entries = [e for e in quarantine.entries() if not e.delivered] if args.all else [quarantine.entry(args.id)]
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not entries:
        print("nothing to replay")
        quarantine.close()
        return 0

    col = config.collector
    base = config.path.resolve().parent  # certificate paths are relative to the config file, as for the agent

    def resolve(name: str | None) -> str | None:
        return None if name is None else str(base / name)

    async def run() -> list[Any]:
        client = make_client(timeout_s=col.timeout_s, verify_tls=col.verify_tls, ca_file=resolve(col.ca_file),
                             client_cert=resolve(col.client_cert), client_key=resolve(col.client_key),
                             http2=col.http2)
        async with client:
            return await replay(quarantine, entries, client, url=col.url, api_key=col.api_key,
                                gateway_id=config.gateway_id)

    try:
        results = asyncio.run(run())
    except (StoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        quarantine.close()
    for r in results:
        answer = f" {r.status}: {r.answer[:200]}" if r.status is not None else f" {r.answer}"
        print(f"{r.entry.id:>5}  {r.entry.batch_id}  {r.result}{answer}")
    return 0 if all(r.result == "delivered" for r in results) and len(results) == len(entries) else 1


def cmd_hash_password(args: argparse.Namespace) -> int:
    from edge_agent.status.passwd import main as passwd_main

    return int(passwd_main(args.rest) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description="Edge IoT gateway agent")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent with a config file")
    run.add_argument("--config", "-c", required=True, help="agent config (TOML)")
    run.add_argument("--log-level", action="append", metavar="[COMPONENT=]LEVEL", help=LOG_LEVEL_HELP)
    run.add_argument("--log-format", choices=["text", "json"], default="text", help="json: one object per line")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate a config and its profiles, print the resolved devices")
    check.add_argument("--config", "-c", required=True, help="agent config (TOML)")
    check.set_defaults(func=cmd_check)

    status = sub.add_parser("status", help="summary of a running agent (devices, backlog, last sync)")
    where = status.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", "-c", help="the agent's config (to find its HTTP address)")
    where.add_argument("--url", help="the agent's base URL, e.g. http://127.0.0.1:8080")
    status.add_argument("--json", action="store_true", help="print the full status as JSON")
    status.set_defaults(func=cmd_status)

    quarantine = sub.add_parser("quarantine", help="batches the collector refused for good: list, replay")
    q_sub = quarantine.add_subparsers(dest="action", required=True)
    q_list = q_sub.add_parser("list", help="the quarantined batches in the agent's buffer, with the answers")
    q_list.add_argument("--config", "-c", required=True, help="agent config (TOML): where the buffer is")
    q_list.add_argument("--json", action="store_true", help="print the records as JSON")
    q_list.set_defaults(func=cmd_quarantine_list)
    q_replay = q_sub.add_parser("replay", help="send quarantined batches to the collector again")
    q_replay.add_argument("--config", "-c", required=True, help="agent config (TOML): buffer and collector")
    which = q_replay.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, metavar="ID", help="the record to replay (see quarantine list)")
    which.add_argument("--all", action="store_true", help="every record not yet delivered by a replay")
    q_replay.set_defaults(func=cmd_quarantine_replay)

    hashpw = sub.add_parser("hash-password", help="hash an operator's password for the [[users]] table",
                            add_help=False)
    hashpw.set_defaults(func=cmd_hash_password)

    demo = sub.add_parser("demo", help="run the simulated plant, a collector and the agent together")
    demo.add_argument("--config", default="examples/plant.toml", help="demo agent config")
    demo.add_argument("--data-dir", default=".demo-data", help="where the agent buffer and collector DB live")
    demo.add_argument("--duration", type=float, help="stop after S seconds and print a JSON summary")
    demo.add_argument("--broker", default="auto",
                      help="MQTT broker: auto (127.0.0.1:1883 if reachable, else embedded), embedded, or a URL")
    demo.add_argument("--fresh", action="store_true", help="start with empty buffer and collector database")
    demo.add_argument("--no-mes-operators", action="store_true",
                      help="without the simulated MES (part flow) and operator (alarm acks) of the fleet page")
    demo.add_argument("--log-level", action="append", metavar="[COMPONENT=]LEVEL", help=LOG_LEVEL_HELP)
    demo.add_argument("--log-format", choices=["text", "json"], default="text", help="json: one object per line")
    demo.set_defaults(func=cmd_demo)

    _add_analyze(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if args.command != "hash-password" and rest:
        build_parser().parse_args(argv)  # reports the unknown arguments and exits 2
    args.rest = rest
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
