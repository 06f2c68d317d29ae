"""Run inside a container as some user (`python3 -c`, the source of this file): what
the gateway bus lets that user do. Prints one JSON line: whether it could own NAME,
which method calls of another connection it saw through an eavesdropping match rule,
and what BecomeMonitor (what `busctl monitor` asks) answered."""

import asyncio
import json
import sys

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.constants import NameFlag, RequestNameReply
from dbus_fast.errors import DBusError

DBUS = {"destination": "org.freedesktop.DBus", "path": "/org/freedesktop/DBus"}


async def probe(address: str, name: str) -> dict[str, object]:
    out: dict[str, object] = {}
    owner = await MessageBus(bus_address=address).connect()
    try:
        reply = await owner.request_name(name, NameFlag.DO_NOT_QUEUE)
        out["own"] = reply == RequestNameReply.PRIMARY_OWNER
    except DBusError as exc:
        out["own"] = exc.type
    spy = await MessageBus(bus_address=address).connect()
    seen: list[str] = []
    spy.add_message_handler(
        lambda m: seen.append(m.member) if m.message_type == MessageType.METHOD_CALL else None
    )
    rule = "eavesdrop=true,type=method_call,member=Ping"
    await spy.call(
        Message(
            **DBUS, interface="org.freedesktop.DBus", member="AddMatch", signature="s", body=[rule]
        )
    )
    other = await MessageBus(bus_address=address).connect()
    ping = {"destination": owner.unique_name, "path": "/", "interface": "org.freedesktop.DBus.Peer"}
    await other.call(Message(**ping, member="Ping"))
    # The daemon routes in order: a copy of that call would reach the spy before this reply.
    await spy.call(Message(**DBUS, interface="org.freedesktop.DBus", member="GetId"))
    out["eavesdropped"] = seen
    monitor = await MessageBus(bus_address=address).connect()
    reply = await monitor.call(
        Message(
            **DBUS,
            interface="org.freedesktop.DBus.Monitoring",
            member="BecomeMonitor",
            signature="asu",
            body=[[], 0],
        )
    )
    out["monitor"] = reply.error_name or "allowed"
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe(sys.argv[1], sys.argv[2]))))
