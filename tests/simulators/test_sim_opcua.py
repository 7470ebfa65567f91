"""OPC UA side: an asyncua client reads the packaging lines as the profile addresses them."""

from __future__ import annotations

import asyncio

import pytest
from asyncua import Client, ua

from simulators.broker import free_port
from simulators.opcua_server import NAMESPACE_URI, PackagingOpcuaServer
from simulators.plant import Plant

EXPECTED_TYPES = {
    "State": ua.VariantType.Int32,
    "StopReason": ua.VariantType.UInt16,
    "Running": ua.VariantType.Boolean,
    "GoodCount": ua.VariantType.UInt32,
    "RejectCount": ua.VariantType.UInt32,
    "Speed": ua.VariantType.Double,
    "MotorCurrent": ua.VariantType.Double,
    "Recipe": ua.VariantType.String,
}


class Changes:
    """Subscription handler collecting data changes."""

    def __init__(self) -> None:
        self.values: asyncio.Queue[object] = asyncio.Queue()

    def datachange_notification(self, node: object, val: object, data: object) -> None:
        self.values.put_nowait(val)


async def test_lines_are_served_as_the_profile_says(profile) -> None:
    port = free_port()
    plant = Plant(seed=3, cnc=0, lines=2, sensors=0)
    plant.step(5.0)
    async with PackagingOpcuaServer(plant.lines, port=port) as server:
        assert server.namespace_index == 2
        assert server.url == f"opc.tcp://127.0.0.1:{port}/"
        await server.update()
        async with Client(server.url, timeout=5) as client:
            namespaces = await client.get_namespace_array()
            assert namespaces[2] == NAMESPACE_URI
            assert await client.get_namespace_index(NAMESPACE_URI) == 2

            line = plant.lines[0]
            speed = await client.get_node("ns=2;s=pack-1.Speed").read_value()
            assert speed == pytest.approx(line.speed)
            for name, vtype in EXPECTED_TYPES.items():
                node = client.get_node(f"ns=2;s=pack-2.{name}")
                dv = await node.read_data_value()
                assert dv.Value is not None and dv.Value.VariantType == vtype, name
                assert (await node.read_browse_name()) == ua.QualifiedName(name, 2)
            assert await client.get_node("ns=2;s=pack-2.Recipe").read_value() == plant.lines[1].recipe.name

            obj = client.get_node("ns=2;s=pack-1")
            assert await obj.read_browse_name() == ua.QualifiedName("pack-1", 2)
            temp = await client.nodes.objects.get_child(["2:pack-1", "2:SealJaw", "2:Temperature"])
            assert await temp.read_value() == pytest.approx(line.seal_temp)

            # every address in the shipped profile resolves, for both lines
            for device in ("pack-1", "pack-2"):
                for tag in profile("packaging_line")["tags"]:
                    if "node_id" in tag:
                        node = client.get_node(tag["node_id"].format(device=device))
                    else:
                        path = tag["browse_path"].format(device=device).split("/")
                        node = await client.nodes.objects.get_child(path)
                    await node.read_value()

            # values follow the model, and subscriptions see the changes
            handler = Changes()
            subscription = await client.create_subscription(50, handler)
            good = client.get_node("ns=2;s=pack-1.GoodCount")
            await subscription.subscribe_data_change(good)
            first = await asyncio.wait_for(handler.values.get(), 5)
            assert first == line.good_count
            plant.step(10.0)
            await server.update()
            changed = await asyncio.wait_for(handler.values.get(), 5)
            assert isinstance(changed, int) and isinstance(first, int)
            assert changed == line.good_count > first
            await subscription.delete()
