"""Messages committed but not acknowledged before a crash are redelivered by the broker (DUP,
same packet id): the connector recognises them by their delivery marks and stores them once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import orjson
import paho.mqtt.client as mqtt

from edge_agent.connectors.base import CommitCallback
from edge_agent.connectors.mqtt.config import MqttConnection
from edge_agent.connectors.mqtt.connector import MqttConnector
from edge_agent.model import Mark, Sample
from edge_agent.profiles import MqttProfile
from tests.connectors.connector_testkit import FakeSink, Ready, make_device, stop_task, wait_until

PROFILE = MqttProfile.model_validate({
    "protocol": "mqtt", "profile": {"name": "counter"}, "mqtt": {"topic": "test/redelivery/{device}"},
    "tags": [{"name": "n", "type": "int64", "field": "n"}],
})


class CrashingSink(FakeSink):
    """Commits (records samples and marks) but, while ``hold`` is set, never acknowledges: like an
    agent killed between its commit and the acknowledgement."""

    hold = True

    async def emit(
        self, samples: Sequence[Sample], on_commit: CommitCallback | None = None, marks: Sequence[Mark] = ()
    ) -> None:
        await super().emit(samples, None if self.hold else on_commit, marks)


async def test_redelivered_committed_messages_are_not_stored_twice(mosquitto: str) -> None:
    device_id = uuid.uuid4().hex[:8]
    conn = MqttConnection(broker=mosquitto, device_id=device_id, client_id=f"redeliver-{device_id}",
                          reconnect_delay_s=0.2, reconnect_delay_max_s=0.5)
    device = make_device("counter", PROFILE, conn)
    sink = CrashingSink("counter", "mqtt")

    task = asyncio.create_task(MqttConnector(device, "gw").run(sink, Ready()))
    await wait_until(lambda: sink.status.state == "connected", what="first session")
    host, port = mosquitto.removeprefix("mqtt://").split(":")
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{device_id}")
    pub.connect(host, int(port))
    pub.loop_start()
    try:
        infos = [pub.publish(f"test/redelivery/{device_id}", orjson.dumps({"n": n}), qos=1) for n in range(20)]
        for info in infos:
            info.wait_for_publish(10)
        await wait_until(lambda: len(sink.samples) == 20, what="20 messages committed")
        await stop_task(task)  # the "crash": committed, never acknowledged

        sink.hold = False
        task = asyncio.create_task(MqttConnector(device, "gw").run(sink, Ready()))
        await wait_until(lambda: sink.status.duplicates == 20, what="20 redeliveries recognised")
        infos = [pub.publish(f"test/redelivery/{device_id}", orjson.dumps({"n": n}), qos=1) for n in range(20, 25)]
        for info in infos:
            info.wait_for_publish(10)
        await wait_until(lambda: len(sink.samples) == 25, what="new messages after the restart")
        await asyncio.sleep(0.5)
        assert [s.value for s in sink.samples] == list(range(25))
        assert sink.status.duplicates == 20
    finally:
        await stop_task(task)
        pub.loop_stop()
        pub.disconnect()
