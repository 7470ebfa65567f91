"""Prometheus metrics of the agent, rendered from its status snapshot at scrape time.

Nothing is counted twice: the connectors, the buffer and the uploader already keep
their counters (shown on the status page); a scrape turns the same snapshot into the
Prometheus text format, so the hot paths carry no extra instrumentation. Names follow
Prometheus conventions: units in names, ``_total`` for counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from edge_agent.oee.model import OeeResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATES = ("starting", "connected", "disconnected", "stopped")


class StatusCollector:
    """A prometheus_client collector over one status snapshot (see ``Agent.status()``) and the devices'
    health indexes (``{device: index}``, from the live view's twins)."""

    def __init__(self, status: dict[str, Any], health: Mapping[str, float] | None = None,
                 oee: Mapping[str, OeeResult] | None = None) -> None:
        self.status = status
        self.health = health or {}
        self.oee = oee or {}

    def collect(self) -> Iterator[Metric]:
        st = self.status
        yield from self._devices(st.get("devices", {}))
        yield from self._buffer(st.get("buffer", {}))
        yield from self._sync(st.get("sync", {}))
        if self.health:
            health = GaugeMetricFamily("edge_agent_device_health_index",
                                       "Health index of the device, 0-100 (predictive maintenance)", labels=["device"])
            for name, index in sorted(self.health.items()):
                health.add_metric([name], float(index))
            yield health
        if self.oee:
            yield from self._oee()
        up = GaugeMetricFamily("edge_agent_uptime_seconds", "Seconds since the agent started")
        up.add_metric([], float(st.get("uptime_s", 0.0)))
        yield up
        info = GaugeMetricFamily("edge_agent_info", "Agent version and gateway id", labels=["gateway", "version"])
        info.add_metric([str(st.get("gateway_id", "")), str(st.get("version", ""))], 1.0)
        yield info

    def _devices(self, devices: dict[str, dict[str, Any]]) -> Iterable[Metric]:
        labels = ["device", "protocol"]
        samples = CounterMetricFamily("edge_agent_device_samples", "Samples read from the device", labels=labels)
        errors = CounterMetricFamily("edge_agent_device_errors", "Failed reads and connections", labels=labels)
        requests = CounterMetricFamily("edge_agent_device_requests", "Requests sent to the device", labels=labels)
        reconnects = CounterMetricFamily("edge_agent_device_reconnects", "Recoveries after a failure", labels=labels)
        malformed = CounterMetricFamily("edge_agent_device_malformed_payloads",
                                        "Payloads that could not be decoded", labels=labels)
        duplicates = CounterMetricFamily("edge_agent_device_redeliveries_skipped",
                                         "Redelivered messages recognised as already stored", labels=labels)
        state = GaugeMetricFamily("edge_agent_device_state", "1 for the device's current connection state",
                                  labels=[*labels, "state"])
        last = GaugeMetricFamily("edge_agent_device_last_sample_timestamp_seconds",
                                 "Time of the newest sample", labels=labels)
        latency = HistogramMetricFamily("edge_agent_device_request_duration_seconds",
                                        "Time from a read request to its answer (polled reads)", labels=labels)
        for name, d in sorted(devices.items()):
            key = [name, str(d.get("protocol", ""))]
            lat = d.get("latency")
            if isinstance(lat, dict) and lat.get("count"):
                buckets = [(_bound(b), float(c)) for b, c in zip(lat["buckets_s"], lat["counts"], strict=True)]
                latency.add_metric(key, [*buckets, ("+Inf", float(lat["count"]))], sum_value=float(lat["sum_s"]))
            samples.add_metric(key, float(d.get("samples", 0)))
            errors.add_metric(key, float(d.get("errors", 0)))
            requests.add_metric(key, float(d.get("requests", 0)))
            reconnects.add_metric(key, float(d.get("reconnects", 0)))
            malformed.add_metric(key, float(d.get("malformed", 0)))
            duplicates.add_metric(key, float(d.get("duplicates", 0)))
            for s in STATES:
                state.add_metric([*key, s], 1.0 if d.get("state") == s else 0.0)
            if d.get("last_sample_ts") is not None:
                last.add_metric(key, float(d["last_sample_ts"]))
        return [samples, errors, requests, reconnects, malformed, duplicates, state, last, latency]

    def _oee(self) -> Iterable[Metric]:
        """Live OEE of the current shift per device (docs/oee.md): the ratios and the part counts."""
        figures = [
            ("edge_agent_device_oee_ratio", "OEE of the current shift so far (A x P x Q)", "oee"),
            ("edge_agent_device_availability_ratio", "OEE availability of the current shift", "availability"),
            ("edge_agent_device_performance_ratio", "OEE performance of the current shift", "performance"),
            ("edge_agent_device_quality_ratio", "OEE quality of the current shift", "quality"),
        ]
        out: list[Metric] = []
        for name, help_text, attr in figures:
            family = GaugeMetricFamily(name, help_text, labels=["device"])
            for device, result in sorted(self.oee.items()):
                family.add_metric([device], float(getattr(result, attr)))
            out.append(family)
        parts = GaugeMetricFamily("edge_agent_device_shift_parts", "Parts made in the current shift",
                                  labels=["device", "kind"])
        for device, result in sorted(self.oee.items()):
            parts.add_metric([device, "good"], float(result.good_count))
            parts.add_metric([device, "scrap"], float(result.scrap_count))
        out.append(parts)
        return out

    def _buffer(self, b: dict[str, Any]) -> Iterable[Metric]:
        rows = GaugeMetricFamily("edge_agent_buffer_rows", "Rows in the local buffer", labels=["stream"])
        rows.add_metric(["samples"], float(b.get("samples_rows", 0)))
        rows.add_metric(["events"], float(b.get("events_rows", 0)))
        unsynced = GaugeMetricFamily("edge_agent_buffer_unsynced_rows", "Rows not yet delivered to the collector",
                                     labels=["stream"])
        for stream, n in sorted(b.get("unsynced", {}).items()):
            unsynced.add_metric([stream], float(n))
        size = GaugeMetricFamily("edge_agent_buffer_bytes", "Size of the buffer files on disk")
        size.add_metric([], float(b.get("file_bytes", 0)))
        cap = GaugeMetricFamily("edge_agent_buffer_max_rows", "Configured bound of the buffer, in samples")
        cap.add_metric([], float(b.get("max_rows", 0)))
        queued = GaugeMetricFamily("edge_agent_write_queue_samples", "Samples waiting for the buffer writer")
        queued.add_metric([], float(b.get("queued", 0)))
        dropped = CounterMetricFamily("edge_agent_samples_dropped", "Samples dropped by the overflow policy",
                                      labels=["reason"])
        for reason, n in sorted(b.get("dropped", {}).items()):
            dropped.add_metric([reason], float(n))
        failures = CounterMetricFamily("edge_agent_buffer_write_failures", "Failed buffer transactions")
        failures.add_metric([], float(b.get("write_failures", 0)))
        return [rows, unsynced, size, cap, queued, dropped, failures]

    def _sync(self, s: dict[str, Any]) -> Iterable[Metric]:
        batches = CounterMetricFamily("edge_agent_sync_batches", "Batches accepted by the collector")
        batches.add_metric([], float(s.get("batches_sent", 0)))
        rows = CounterMetricFamily("edge_agent_sync_rows", "Rows delivered to the collector", labels=["stream"])
        for stream, n in sorted(s.get("rows_sent", {}).items()):
            rows.add_metric([stream], float(n))
        sent = CounterMetricFamily("edge_agent_sync_bytes", "Compressed bytes sent to the collector")
        sent.add_metric([], float(s.get("bytes_sent", 0)))
        dups = CounterMetricFamily("edge_agent_sync_duplicate_batches", "Batches the collector already had")
        dups.add_metric([], float(s.get("duplicate_batches", 0)))
        failing = GaugeMetricFamily("edge_agent_sync_consecutive_failures", "Sync attempts failed in a row")
        failing.add_metric([], float(s.get("consecutive_failures", 0)))
        out: list[Metric] = [batches, rows, sent, dups, failing]
        if s.get("last_success") is not None:
            last = GaugeMetricFamily("edge_agent_sync_last_success_timestamp_seconds", "Time of the last good sync")
            last.add_metric([], float(s["last_success"]))
            out.append(last)
        return out


def render(status: dict[str, Any], process: bool = True, health: Mapping[str, float] | None = None,
           oee: Mapping[str, OeeResult] | None = None) -> bytes:
    """The Prometheus text exposition of a status snapshot, health indexes and live OEE (plus process RSS/CPU)."""
    registry = CollectorRegistry()
    registry.register(StatusCollector(status, health, oee))
    if process:
        ProcessCollector(registry=registry)
    return bytes(generate_latest(registry))


def _bound(seconds: float) -> str:
    return repr(float(seconds))
