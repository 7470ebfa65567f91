"""The event catalogue: constants, strict attribute models, the envelope, and docs/events.md agreeing with them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from edge_agent.behaviour import kinds as k
from edge_agent.behaviour.envelope import InvalidEvent, envelope_of, event_of, parse_event
from edge_agent.behaviour.kinds import InvalidAttributes, validate_attributes
from edge_agent.model import Event

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def problems(kind: str, attributes: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidAttributes) as info:
        validate_attributes(kind, attributes)
    return info.value.problems


def test_every_constant_is_in_the_catalogue() -> None:
    constants = {value for name, value in vars(k).items() if name.isupper() and isinstance(value, str)}
    constants -= {k.GATEWAY_DEVICE, k.SESSION_ID}
    assert constants == set(k.KINDS)
    assert set(k.__all__) >= {name for name, value in vars(k).items() if isinstance(value, str) and value in k.KINDS}


def test_the_names_of_the_first_releases_are_kept() -> None:
    for kind in ("device_connected", "device_disconnected", "agent_started", "malformed_payload", "buffer_overflow"):
        assert kind in k.KINDS


ALARM = {
    "alarm_id": "cnc-1:spindle_temp:hi",
    "tag": "spindle_temp",
    "priority": "medium",
    "condition": "hi",
    "source": "limit",
    "user": None,
    "state": "unack",
    "previous": "normal",
    "value": 61.2,
    "limit": 60.0,
    "message": "spindle temperature high",
    "chattering": False,
}


@pytest.mark.parametrize(
    ("kind", "attributes"),
    [
        # as the agent emits them today (supervisor, buffer, MQTT connector, uploader)
        ("device_connected", {"previous": "starting"}),
        ("device_disconnected", {"error": "connection refused"}),
        ("agent_started", {"devices": ["cnc-1", "pack-1"], "version": "0.1.0"}),
        ("malformed_payload", {"topic": "plant/x", "error": "not JSON", "count": 3}),
        (
            "buffer_overflow",
            {
                "policy": "drop_oldest",
                "dropped_oldest": 10,
                "dropped_newest": 0,
                "since": 1763510400.0,
                "until": 1763510460.0,
                "total_dropped_oldest": 10,
                "total_dropped_newest": 0,
                "max_rows": 1000,
                "max_bytes": 1_000_000,
            },
        ),
        ("buffer_write_recovered", {"kind": None, "failed_s": 1.5, "failed_attempts": 2}),
        ("setpoint_written", {"tag": "speed", "value": 1200}),
        ("setpoint_written", {"id": "a1b2", "tag": "speed", "value": 1200, "user": "ann", "detail": None}),
        ("setpoint_requested", {"id": "a1b2", "tag": "speed", "value": 1200.5, "user": "ann"}),
        ("setpoint_refused", {"id": "a1b2", "tag": "speed", "value": 1, "user": "ann", "detail": "not enabled"}),
        ("config_reloaded", {"added": ["cnc-3"], "removed": [], "changed": ["cnc-1"], "restart_needed_for": ["http"]}),
        ("config_reload_failed", {"problems": ["plant.toml:3: devices[0].name: required"]}),
        ("twin_changed", {"changes": {"reported.speed": 1200, "desired.speed": None}}),
        ("operator_login", {"user": "ann", "role": "operator"}),
        ("operator_login_failed", {"user": "ann", "reason": "locked"}),
        ("operator_logout", {"user": "ann"}),
        ("stop_ended", {"started_at": 1763510400, "duration_s": 30, "category": "unplanned_stop", "reason": "jam"}),
        ("part_inspected", {"part_id": "P-1", "result": "ok", "session_id": "s-1"}),
        ("alarm_raised", {"alarm_id": "cnc-1:temp:hi", "priority": "high", "value": 81.5, "position": "c1"}),
        # as edge_agent/alarms emits them
        ("alarm_raised", {**ALARM, "after": "unshelved"}),
        ("alarm_acknowledged", {**ALARM, "user": "ann", "note": "checked", "state": "acked", "previous": "unack"}),
        ("alarm_returned", {**ALARM, "state": "rtn_unack"}),
        ("alarm_shelved", {**ALARM, "user": "ann", "note": "", "until": 1763514000.0, "duration_s": 3600.0}),
        ("alarm_unshelved", {**ALARM, "user": None, "expired": True}),
        ("alarm_suppressed", {**ALARM, "reason": "planned stop"}),
        ("alarm_condition", {**ALARM, "active": True, "hidden_by": "shelved"}),
        ("alarm_chattering", {**ALARM, "raises": 3, "window_s": 60.0}),
        ("operator_action", {"user": "ann", "action": "reset", "target": "cnc-1"}),
        ("mes.order_released", {"order_id": "O-1", "anything": [1, {"x": None}]}),
    ],
)
def test_valid_attributes(kind: str, attributes: dict[str, Any]) -> None:
    validate_attributes(kind, attributes)


def test_types_are_strict_and_errors_name_the_field() -> None:
    assert problems("part_count", {"good": "3", "scrap": 0}) == [("attributes.good", "Input should be a valid integer")]
    assert problems("part_count", {"good": 1.0, "scrap": True}) == [
        ("attributes.good", "Input should be a valid integer"),
        ("attributes.scrap", "Input should be a valid integer"),
    ]
    assert problems("stop_ended", {"started_at": 1.0, "duration_s": True, "category": "unplanned_stop"}) == [
        ("attributes.duration_s", "Input should be a valid number")
    ]
    assert problems("stop_ended", {"started_at": 1.0, "duration_s": -1, "category": "running"}) == [
        ("attributes.duration_s", "Input should be greater than or equal to 0"),
        ("attributes.category", "Input should be 'unplanned_stop', 'planned_stop', 'changeover' or 'excluded'"),
    ]


def test_missing_and_unknown_attributes() -> None:
    assert problems("stop_ended", {"started_at": 1.0, "duration_s": 5, "category": "changeover", "reasn": "x"}) == [
        ("attributes.reasn", "unknown attribute (did you mean 'reason'?)")
    ]
    assert problems("alarm_cleared", {"tag": "temp"}) == [("attributes.alarm_id", "required")]


def test_unknown_kinds_are_refused_with_a_suggestion() -> None:
    assert problems("part_lodaed", {}) == [("kind", "unknown kind 'part_lodaed' (did you mean 'part_loaded'?)")]
    assert problems("Part Loaded", {})[0][0] == "kind"
    assert problems("zzz", {}) == [("kind", "unknown kind 'zzz' (other systems' kinds take a prefix: 'mes.<name>')")]


def test_session_id_is_allowed_on_every_kind_but_must_be_text() -> None:
    validate_attributes("device_connected", {"previous": "starting", "session_id": "run:cnc-1:1"})
    assert problems("mes.x", {"session_id": 5}) == [
        ("attributes.session_id", "must be a non-empty string of at most 256 characters")
    ]


def test_envelope_names_each_bad_field() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event({"id": "bad id!", "ts": "yesterday", "device": "", "kind": "part_loaded", "extra": 1})
    fields = [f for f, _ in info.value.problems]
    assert fields == ["id", "ts", "device", "extra"]
    with pytest.raises(InvalidEvent) as info:
        parse_event({"id": "e1", "ts": 1.0, "device": "d", "kind": "part_loaded", "attributes": {}})
    assert info.value.problems == [("attributes.part_id", "required")]
    with pytest.raises(InvalidEvent) as info:
        parse_event(
            {
                "id": "e1",
                "ts": 1.0,
                "device": "d",
                "kind": "mes.x",
                "session_id": "a",
                "attributes": {"session_id": "b"},
            }
        )
    assert info.value.problems == [("attributes.session_id", "differs from session_id")]
    with pytest.raises(InvalidEvent) as info:
        parse_event({"schema_version": True, "id": "e1", "ts": "5", "device": "d", "kind": "mes.x"})
    assert [f for f, _ in info.value.problems] == ["schema_version", "ts"]
    assert parse_event({"id": "e1", "ts": 5, "device": "d", "kind": "mes.x"}).ts == 5.0
    with pytest.raises(InvalidEvent):
        parse_event([1, 2])


def test_envelope_and_agent_event_convert_both_ways() -> None:
    envelope = parse_event(
        {
            "id": "e1",
            "ts": 5.0,
            "gateway": "gw1",
            "device": "d",
            "kind": "part_loaded",
            "session_id": "s",
            "attributes": {"part_id": "P"},
        }
    )
    event = event_of(envelope)
    assert event == Event("d", "part_loaded", {"part_id": "P", "session_id": "s"}, 5.0, "e1")
    assert envelope_of(event, "gw1") == envelope


def _doc_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"^\| `([a-z_.]+)` \| (.*) \|[^|]*\|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_docs_list_every_kind_with_its_attributes() -> None:
    rows = _doc_rows()
    assert set(rows) >= set(k.KINDS), f"missing from docs/events.md: {sorted(set(k.KINDS) - set(rows))}"
    for kind, model in k.KINDS.items():
        for name, field in model.model_fields.items():
            assert f"`{name}`" in rows[kind], f"{kind}: attribute {name} not documented"
            optional = f"`{name}`?" in rows[kind]
            assert optional == (not field.is_required()), f"{kind}.{name}: optional mark does not match the model"
