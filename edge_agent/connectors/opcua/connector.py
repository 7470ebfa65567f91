"""OPC UA connector: subscribes to (or polls) the nodes of a profile and emits samples.

Per connection: connect (with username/password when given), resolve the tags'
NodeIds and browse paths, then either

* ``subscribe`` (default): one subscription at ``publishing_interval_ms`` with a
  monitored item per node, plus one read of all nodes so current values arrive at
  once; or
* ``poll``: read all nodes every ``poll_interval_s`` on a fixed-rate schedule.

Callbacks hand samples to the run task through a bounded queue (see :mod:`.feed`).
A dead connection is noticed by asyncua's own supervisor (socket closed, failed
keep-alive), by a bad subscription status, or by our watchdog reading the server
state every ``watchdog_interval_s``; the connection is then closed and opened
again with a capped backoff, and the subscription is created anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from asyncua import Client, Node, ua
from asyncua.common.subscription import DataChangeNotif

from edge_agent.connectors.base import Backoff, Sink, describe_error
from edge_agent.connectors.opcua.config import OpcuaConnection
from edge_agent.connectors.opcua.feed import Feed
from edge_agent.connectors.opcua.nodes import Resolved, resolve
from edge_agent.connectors.opcua.security import apply_security
from edge_agent.connectors.opcua.values import to_samples
from edge_agent.connectors.schedule import PollSchedule, raise_if_cancelled
from edge_agent.errors import ConnectError, ConnectorError, DeviceTimeout, ReadError
from edge_agent.model import Sample
from edge_agent.profiles import OpcuaProfile

if TYPE_CHECKING:
    from edge_agent.config import Device

log = logging.getLogger("edge_agent.connectors.opcua")

# Extra time on top of timeout_s before our own guard gives up on an asyncua call.
GUARD_S = 1.0
# A connect is several round trips (hello, channel, session, activate).
CONNECT_ROUND_TRIPS = 4


def map_error(exc: BaseException, *, connecting: bool = False) -> ConnectorError:
    """Translate an asyncua/socket exception into the agent's error tree."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, TimeoutError):
        error: ConnectorError = DeviceTimeout("timed out")
    elif isinstance(exc, OSError) or connecting:
        error = ConnectError(describe_error(exc))
    else:
        error = ReadError(describe_error(exc))
    error.__cause__ = exc
    return error


class _Handler:
    """asyncua subscription handler: DataValues -> samples -> feed; never blocks."""

    def __init__(self, device: str, resolved: Resolved, feed: Feed, sink: Sink) -> None:
        self.device = device
        self.resolved = resolved
        self.feed = feed
        self.sink = sink

    def datachange_notification(self, node: Node, val: object, data: DataChangeNotif) -> None:
        tags = self.resolved.by_node.get(node.nodeid)
        dv = data.monitored_item.Value
        if not tags or dv is None:
            return
        samples, failed = to_samples(self.device, tags, dv, time.time())
        if failed:
            self.sink.status.errors += failed
        self.feed.add(samples)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        code = status.Status
        if code is not None and not code.is_good():
            self.feed.fail(ConnectError(f"subscription status {code.name}"))


class OpcuaConnector:
    """Reads one OPC UA device described by an :class:`~edge_agent.profiles.OpcuaProfile`."""

    def __init__(self, device: Device, gateway_id: str) -> None:
        if not isinstance(device.profile, OpcuaProfile) or not isinstance(device.connection, OpcuaConnection):
            raise TypeError(f"device '{device.name}' is not an OPC UA device")
        self.device = device
        self.profile: OpcuaProfile = device.profile
        self.conn: OpcuaConnection = device.connection
        self.gateway_id = gateway_id
        self.device_id = self.conn.device_id or device.name
        self._warned: set[str] = set()

    async def run(self, sink: Sink, ready: Callable[[], None]) -> None:
        """Connect, stream samples until the connection fails, back off, reconnect; until cancelled."""
        backoff = Backoff(self.conn.reconnect_delay_s, self.conn.reconnect_delay_max_s)
        announced = False
        logged_unexpected = False

        def up() -> None:
            nonlocal announced
            sink.connected()
            backoff.reset()
            if not announced:
                announced = True
                ready()

        while True:
            client = self._client()
            session = False
            try:
                await self._connect(client)
                session = True
                await self._serve(client, sink, up)
            except ConnectorError as exc:
                sink.disconnected(exc)  # counts the error and logs the first failure
            except Exception as exc:  # a bug must not end the loop; show its traceback once
                if not logged_unexpected:
                    logged_unexpected = True
                    log.exception("%s: unexpected error in the OPC UA connector", self.device.name)
                sink.disconnected(exc)
            finally:
                await self._close(client, session)
            raise_if_cancelled()
            await backoff.wait()

    def _client(self) -> Client:
        client = Client(self.conn.url, timeout=self.conn.timeout_s, watchdog_intervall=self.conn.watchdog_interval_s)
        client.name = client.description = f"edge-agent {self.gateway_id}/{self.device.name}"
        if self.conn.username is not None:
            client.set_user(self.conn.username)
        if self.conn.password is not None:
            client.set_password(self.conn.password)
        return client

    async def _connect(self, client: Client) -> None:
        try:
            async with asyncio.timeout(self.conn.timeout_s * (CONNECT_ROUND_TRIPS * 2 if self.conn.secure else
                                                              CONNECT_ROUND_TRIPS) + GUARD_S):
                await apply_security(client, self.conn, self.gateway_id)
                await client.connect()
        except Exception as exc:
            error = map_error(exc, connecting=True)
            raise type(error)(f"cannot connect to {self.conn.url}: {error}") from exc
        finally:
            raise_if_cancelled()

    async def _close(self, client: Client, session: bool) -> None:
        """Close session and channel (bounded in time), then the socket; never raises."""
        client.connection_lost_callback = None
        if session:
            for step in (client.close_session, client.close_secure_channel):
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.conn.timeout_s):
                        await step()
        with contextlib.suppress(Exception):
            client.disconnect_socket()

    async def _serve(self, client: Client, sink: Sink, up: Callable[[], None]) -> None:
        """Run one connection until it fails (raises a ConnectorError)."""
        feed = Feed(sink, self.device.name)

        async def lost(exc: Exception) -> None:
            feed.fail(ConnectError(f"connection lost: {describe_error(exc)}"))

        client.connection_lost_callback = lost
        resolved = await self._resolve(client, sink)
        tasks = [asyncio.create_task(self._watchdog(client, feed), name=f"opcua-watchdog-{self.device.name}")]
        try:
            if self.conn.mode == "subscribe":
                await self._subscribe(client, resolved, feed, sink)
                up()
                feed.put(await self._read(client, resolved, sink))
            else:
                up()
                poller = self._poll(client, resolved, feed, sink)
                tasks.append(asyncio.create_task(poller, name=f"opcua-poll-{self.device.name}"))
            await feed.drain()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _resolve(self, client: Client, sink: Sink) -> Resolved:
        try:
            async with asyncio.timeout(self.conn.timeout_s + GUARD_S):
                resolved = await resolve(client, self.profile.tags, self.device_id)
        except Exception as exc:
            raise map_error(exc) from exc
        finally:
            raise_if_cancelled()
        for tag, reason in resolved.missing:
            self._warn_tag(tag.name, reason, sink)
        if not resolved.by_node:
            raise ReadError("none of the profile's nodes could be found on the server")
        return resolved

    def _warn_tag(self, tag: str, reason: str, sink: Sink) -> None:
        sink.status.errors += 1
        if tag not in self._warned:
            self._warned.add(tag)
            log.warning("%s: tag '%s' is skipped: %s", self.device.name, tag, reason)

    async def _subscribe(self, client: Client, resolved: Resolved, feed: Feed, sink: Sink) -> None:
        handler = _Handler(self.device.name, resolved, feed, sink)
        nodes = [client.get_node(node_id) for node_id in resolved.by_node]
        try:
            async with asyncio.timeout(self.conn.timeout_s * 2 + GUARD_S):
                subscription = await client.create_subscription(self.conn.publishing_interval_ms, handler)
                results = await subscription.subscribe_data_change(
                    nodes, sampling_interval=ua.Double(self.conn.publishing_interval_ms)
                )
        except Exception as exc:
            raise map_error(exc) from exc
        finally:
            raise_if_cancelled()
        ok = 0
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, ua.StatusCode):
                for tag in resolved.by_node.pop(node.nodeid):
                    self._warn_tag(tag.name, f"cannot monitor {node.nodeid.to_string()}: {result.name}", sink)
            else:
                ok += 1
        if not ok:
            raise ReadError("none of the profile's nodes could be monitored")

    async def _read(self, client: Client, resolved: Resolved, sink: Sink) -> list[Sample]:
        """Read every node once (one Read service call)."""
        node_ids = list(resolved.by_node)
        sink.status.requests += 1
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.conn.timeout_s + GUARD_S):
                values = await client.read_attributes([client.get_node(n) for n in node_ids])
        except Exception as exc:
            raise map_error(exc) from exc
        finally:
            raise_if_cancelled()
        sink.status.latency.observe(time.perf_counter() - started)
        now = time.time()
        samples: list[Sample] = []
        for node_id, dv in zip(node_ids, values, strict=True):
            got, failed = to_samples(self.device.name, resolved.by_node[node_id], dv, now)
            sink.status.errors += failed
            samples.extend(got)
        return samples

    async def _poll(self, client: Client, resolved: Resolved, feed: Feed, sink: Sink) -> None:
        schedule = PollSchedule(self.conn.poll_interval_s)
        try:
            while True:
                await feed.put_wait(await self._read(client, resolved, sink))
                await schedule.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            feed.fail(map_error(exc))

    async def _watchdog(self, client: Client, feed: Feed) -> None:
        """Fail the feed when the server stops answering or is no longer running."""
        try:
            while True:
                raise_if_cancelled()
                await asyncio.sleep(self.conn.watchdog_interval_s)
                await client.check_connection()
                async with asyncio.timeout(self.conn.timeout_s):
                    state = await client.nodes.server_state.read_value()
                if state != ua.ServerState.Running:
                    name = getattr(state, "name", state)
                    raise ConnectError(f"server state is {name}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            feed.fail(map_error(exc))
