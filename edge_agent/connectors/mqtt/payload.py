"""Turn MQTT messages into samples: topic matching, JSON field paths, plain payloads.

A profile maps topics to tags. Topics may hold MQTT wildcards (``+``, ``#``) and
``{device}``, replaced by the device's id. With ``device_from_topic = N`` in the
profile's ``[mqtt]`` table, segment ``N`` (0-based, a ``+`` wildcard) of the
topic a message arrived on names the device of its samples, so one device entry
ingests many sensors.

Payloads are JSON: a tag with ``field`` takes the value at that dotted path
(``vibration.rms``, ``axes.0``), a tag without one takes the whole document, so a
plain number (``21.5``) works. A payload that is not JSON is taken as plain text
when no tag of its topic has a ``field``: a number, or ``true``/``false``/``on``/
``off`` for a bool. ``timestamp_field`` names where a JSON object carries its time
(epoch seconds or milliseconds, or ISO 8601 with an offset).

A tag with a ``[tags.waveform]`` table takes a JSON array at its ``field`` (a
window of raw vibration, its sample rate fixed in the profile or read from the
payload at ``sample_rate_field``) and gives one sample per feature
(``<tag>.<feature>``, see :mod:`edge_agent.maintenance.waveform`); the array itself
is never a sample. Profiles without waveform tags take exactly the scalar path.

Anything that does not fit raises :class:`PayloadError`; the connector counts it
as malformed and goes on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import paho.mqtt.client as mqtt

from edge_agent.model import Quality, Sample, Value
from edge_agent.profiles import MqttProfile, MqttTag

if TYPE_CHECKING:  # imported where used: numpy only for profiles with waveform tags
    from edge_agent.maintenance.waveform import ShaftSpeeds, WindowPlan

TRUE_WORDS = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}
MATCHED_TOPICS_MAX = 10_000
"""Topics whose wildcard match a topic map keeps (one entry per device topic of a profile with wildcards)."""


class PayloadError(ValueError):
    """A message that cannot become samples."""


def field_value(doc: Any, path: str | None) -> Any:
    """The value at a dotted path in a JSON document (list elements by index); KeyError if absent."""
    return _walk(doc, None if path is None else tuple(path.split(".")), path)


def getter(path: str | None) -> Callable[[Any], Any]:
    """:func:`field_value` for one path, decided once (a one- or two-level object path is the common case)."""
    parts = None if path is None else tuple(path.split("."))
    if parts is None:
        return lambda doc: doc
    if len(parts) == 1:
        (a,) = parts

        def one(doc: Any) -> Any:
            if doc.__class__ is dict and a in doc:
                return doc[a]
            return _walk(doc, parts, path)
        return one
    if len(parts) == 2:
        a, b = parts

        def two(doc: Any) -> Any:
            if doc.__class__ is dict:
                inner = doc.get(a)
                if inner.__class__ is dict and b in inner:
                    return inner[b]
            return _walk(doc, parts, path)
        return two
    return lambda doc: _walk(doc, parts, path)


def _walk(doc: Any, parts: tuple[str, ...] | None, path: str | None) -> Any:
    if parts is None:
        return doc
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def parse_timestamp(value: Any) -> float:
    """Epoch seconds from epoch seconds or milliseconds, or an ISO 8601 time with a UTC offset."""
    if isinstance(value, bool):
        raise PayloadError(f"timestamp {value!r} is not a time")
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PayloadError(f"timestamp {value!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            raise PayloadError(f"timestamp {value!r} has no UTC offset")
        return parsed.timestamp()
    raise PayloadError(f"timestamp {value!r} is not a time")


def coerce(tag: MqttTag, raw: Any) -> Value:
    """A JSON value as the tag's type (numbers scaled); PayloadError when it does not fit."""
    if tag.type == "string":
        return raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    if tag.type == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float):
            return bool(raw)
        raise PayloadError(f"{tag.name}: expected a boolean, got {_show(raw)}")
    if isinstance(raw, bool):
        raw = int(raw)
    if not isinstance(raw, int | float):
        raise PayloadError(f"{tag.name}: expected a number, got {_show(raw)}")
    value = tag.convert(raw)
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadError(f"{tag.name}: {value} is not a finite number")
    if tag.type.startswith(("int", "uint")) and tag.scale == 1.0 and tag.offset == 0.0:
        return int(value)
    return float(value)


def coercer(tag: MqttTag) -> Callable[[Any], Value]:
    """:func:`coerce` for one tag, with a fast path for the common case of a plain JSON number
    (a float for a float tag, an int for an integer tag, no scale or offset); same results."""
    plain = tag.scale == 1.0 and tag.offset == 0.0
    if plain and tag.type in ("float32", "float64"):
        def as_float(raw: Any) -> Value:
            cls = raw.__class__
            if cls is float:
                if math.isfinite(raw):
                    return raw
            elif cls is int:  # a JSON integer for a float tag (bool is not int's class here)
                return float(raw)
            return coerce(tag, raw)
        return as_float
    if plain and tag.type.startswith(("int", "uint")):
        def as_int(raw: Any) -> Value:
            if raw.__class__ is int:
                return raw
            return coerce(tag, raw)
        return as_int
    return lambda raw: coerce(tag, raw)


def coerce_text(tag: MqttTag, text: str) -> Value:
    """A plain-text payload as the tag's type."""
    if tag.type == "string":
        return text
    if tag.type == "bool":
        word = TRUE_WORDS.get(text.lower())
        if word is None:
            raise PayloadError(f"{tag.name}: expected a boolean, got {_show(text)}")
        return word
    try:
        number = float(text)
    except ValueError:
        raise PayloadError(f"{tag.name}: expected a number, got {_show(text)}") from None
    return coerce(tag, int(number) if number.is_integer() and "." not in text else number)


def _show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


class TopicMap:
    """Which tags a topic carries, with the profile's {device} placeholders filled in."""

    def __init__(self, profile: MqttProfile, device_id: str) -> None:
        self.profile = profile
        self.device_segment = profile.mqtt.device_from_topic
        self.timestamp_field = profile.mqtt.timestamp_field
        self.by_topic: dict[str, list[MqttTag]] = {}
        for tag in profile.tags:
            topic = (tag.topic or profile.mqtt.topic).replace("{device}", device_id)
            self.by_topic.setdefault(topic, []).append(tag)
        self.wildcards = [t for t in self.by_topic if "+" in t or "#" in t]
        self._matched: dict[str, list[MqttTag]] = {}
        # per scalar tag, decided once: its name, field path split, and value converter
        self._plans: dict[int, list[tuple[str, Callable[[Any], Any], str | None, Callable[[Any], Value]]]] = {
            id(tags): [(t.name, getter(t.field), t.field, coercer(t)) for t in tags if t.waveform is None]
            for tags in self.by_topic.values()
        }
        # per waveform tag: its window plan, array path and sample rate path
        self._waves: dict[int, list[tuple[WindowPlan, Callable[[Any], Any], str, Callable[[Any], Any] | None]]] = {}
        self.shaft_tags: frozenset[str] = frozenset()
        self.shaft_speeds: ShaftSpeeds | None = None
        # decided once: a profile without waveform tags decodes exactly as before
        self.decode: Callable[[str, str, bytes, float], list[Sample]] = self._decode_scalars
        if any(t.waveform is not None for t in profile.tags):
            self._plan_waveforms(profile)
            self.decode = self._decode_with_waveforms

    def _plan_waveforms(self, profile: MqttProfile) -> None:
        from edge_agent.maintenance import waveform

        self._window_samples = waveform.window_samples
        self._waveform_error = waveform.WaveformError
        for tags in self.by_topic.values():
            waves = [
                (waveform.WindowPlan.of(t.name, t.waveform, t.scale, t.offset), getter(t.field), t.field or t.name,
                 None if t.waveform.sample_rate_field is None else getter(t.waveform.sample_rate_field))
                for t in tags if t.waveform is not None
            ]
            if waves:
                self._waves[id(tags)] = waves
        self.shaft_tags = frozenset(
            t.waveform.bearing.shaft_tag for t in profile.tags
            if t.waveform is not None and t.waveform.bearing is not None and t.waveform.bearing.shaft_tag is not None
        )
        self.shaft_speeds = waveform.ShaftSpeeds()

    def tags_for(self, topic: str) -> list[MqttTag]:
        tags = self.by_topic.get(topic)
        if tags is not None:
            return tags
        tags = self._matched.get(topic)
        if tags is None:  # a wildcard's match is kept per topic (bounded: a new topic beyond it is matched again)
            tags = next((self.by_topic[sub] for sub in self.wildcards if mqtt.topic_matches_sub(sub, topic)), [])
            if len(self._matched) < MATCHED_TOPICS_MAX:
                self._matched[topic] = tags
        return tags

    def device_of(self, default: str, topic: str) -> str:
        """The device a message's samples belong to: a topic segment, or the configured device."""
        if self.device_segment is None:
            return default
        levels = topic.split("/")
        segment = levels[self.device_segment] if self.device_segment < len(levels) else ""
        if not segment:
            raise PayloadError(f"topic segment {self.device_segment} (the device) is empty")
        return segment

    def _decode_scalars(self, device: str, topic: str, payload: bytes, now: float) -> list[Sample]:
        """Samples of one message; [] for a topic no tag listens to (``decode`` of a profile without waveforms)."""
        tags = self.tags_for(topic)
        if not tags:
            return []
        device = self.device_of(device, topic)
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            if any(tag.field is not None for tag in tags):
                raise PayloadError(f"invalid JSON: {exc}") from None
            return self._plain(device, tags, payload, now)
        _, samples, missing = self._scalars(device, tags, doc, now)
        if not samples:
            raise PayloadError(f"none of the profile's fields present (missing {', '.join(missing)})")
        return samples

    def _scalars(
        self, device: str, tags: list[MqttTag], doc: Any, now: float
    ) -> tuple[float, list[Sample], list[str]]:
        """The timestamp of a decoded message, its scalar samples, and the field paths it lacks."""
        ts = now
        if self.timestamp_field and isinstance(doc, dict):
            raw_ts = doc.get(self.timestamp_field)
            if raw_ts is not None:
                ts = parse_timestamp(raw_ts)
        samples = []
        missing = []
        for name, get, path, convert in self._plans[id(tags)]:
            try:
                raw = get(doc)
            except KeyError:
                missing.append(path or name)
                continue
            if raw is None:
                samples.append(Sample(device, name, ts, 0.0, Quality.BAD))
                continue
            samples.append(Sample(device, name, ts, convert(raw)))
        return ts, samples, missing

    def _decode_with_waveforms(self, device: str, topic: str, payload: bytes, now: float) -> list[Sample]:
        """``decode`` of a profile with waveform tags: scalar samples, then each window's feature samples."""
        tags = self.tags_for(topic)
        if not tags:
            return []
        waves = self._waves.get(id(tags), [])
        if not waves:
            samples = self._decode_scalars(device, topic, payload, now)
            self._note_shaft_speeds(samples)
            return samples
        device = self.device_of(device, topic)
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"invalid JSON: {exc}") from None
        ts, samples, missing = self._scalars(device, tags, doc, now)
        self._note_shaft_speeds(samples)
        windows = 0
        for plan, get, path, get_rate in waves:
            try:
                raw = get(doc)
            except KeyError:
                missing.append(path)
                continue
            rate = None
            if get_rate is not None:
                rate = self._sample_rate(plan.tag, get_rate, doc)
            speeds = self.shaft_speeds
            try:
                samples += self._window_samples(plan, device, ts, raw, sample_rate_hz=rate,
                                                shaft_hz=None if speeds is None else speeds.hz(plan, device))
            except self._waveform_error as exc:
                raise PayloadError(f"{plan.tag}: {exc}") from None
            windows += 1
        if not samples and not windows:
            raise PayloadError(f"none of the profile's fields present (missing {', '.join(missing)})")
        return samples

    @staticmethod
    def _sample_rate(tag: str, get: Callable[[Any], Any], doc: Any) -> float:
        try:
            rate = get(doc)
        except KeyError as exc:
            raise PayloadError(f"{tag}: no sample rate at '{exc.args[0]}'") from None
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
            raise PayloadError(f"{tag}: sample rate {_show(rate)} is not a positive number")
        return float(rate)

    def _note_shaft_speeds(self, samples: list[Sample]) -> None:
        speeds = self.shaft_speeds
        if speeds is not None and self.shaft_tags:
            for s in samples:
                if s.tag in self.shaft_tags and s.quality is Quality.GOOD:
                    speeds.update(s.device, s.tag, s.value)

    @staticmethod
    def _plain(device: str, tags: list[MqttTag], payload: bytes, now: float) -> list[Sample]:
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise PayloadError("payload is neither JSON nor UTF-8 text") from None
        if not text:
            raise PayloadError("empty payload")
        return [Sample(device, tag.name, now, coerce_text(tag, text)) for tag in tags]
