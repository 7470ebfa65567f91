"""Prometheus exposition of the agent's status snapshot."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from edge_agent.ops.metrics import render

STATUS = {
    "gateway_id": "gw-1", "version": "0.1.0", "uptime_s": 12.5,
    "devices": {
        "cnc-1": {"protocol": "modbus", "state": "connected", "samples": 150, "errors": 2, "requests": 30,
                  "reconnects": 1, "malformed": 0, "last_sample_ts": 1700000000.0},
        "vib-1": {"protocol": "mqtt", "state": "disconnected", "samples": 10, "errors": 5, "requests": 0,
                  "reconnects": 0, "malformed": 3, "last_sample_ts": None},
    },
    "buffer": {"samples_rows": 160, "events_rows": 4, "unsynced": {"samples": 60, "events": 1},
               "file_bytes": 4096, "max_rows": 1000, "queued": 7, "dropped": {"dropped_oldest": 9},
               "write_failures": 0},
    "sync": {"batches_sent": 3, "rows_sent": {"samples": 100, "events": 3}, "bytes_sent": 2048,
             "duplicate_batches": 1, "consecutive_failures": 0, "last_success": 1700000001.0},
}


def values() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(render(STATUS).decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_device_counters_and_state() -> None:
    v = values()
    key = (("device", "cnc-1"), ("protocol", "modbus"))
    assert v[("edge_agent_device_samples_total", key)] == 150
    assert v[("edge_agent_device_errors_total", key)] == 2
    assert v[("edge_agent_device_state", (*key, ("state", "connected")))] == 1
    assert v[("edge_agent_device_state", (*key, ("state", "disconnected")))] == 0
    vib = (("device", "vib-1"), ("protocol", "mqtt"))
    assert v[("edge_agent_device_malformed_payloads_total", vib)] == 3
    assert ("edge_agent_device_last_sample_timestamp_seconds", vib) not in v


def test_buffer_and_sync() -> None:
    v = values()
    assert v[("edge_agent_buffer_unsynced_rows", (("stream", "samples"),))] == 60
    assert v[("edge_agent_samples_dropped_total", (("reason", "dropped_oldest"),))] == 9
    assert v[("edge_agent_sync_rows_total", (("stream", "events"),))] == 3
    assert v[("edge_agent_sync_bytes_total", ())] == 2048
    assert v[("edge_agent_info", (("gateway", "gw-1"), ("version", "0.1.0")))] == 1


def test_process_metrics_present() -> None:
    names = {name for name, _ in values()}
    assert "process_resident_memory_bytes" in names
