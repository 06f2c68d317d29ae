"""Calls to the ZigBee service's own additions (its backups) from other processes: the
update service and `agile-gateway zigbee`. Imports no zigpy."""

from typing import Any

from dbus_fast.aio import MessageBus

from services import contract as c
from services.bus import call


async def zigbee_call(
    bus: MessageBus, member: str, signature: str = "", *body: Any, timeout: float = 30.0
) -> Any:
    """A method of the ZB protocol object; its one return value."""
    reply = await call(
        bus,
        c.protocol_bus_name("ZB"),
        c.protocol_path("ZB"),
        c.PROTOCOL_IFACE,
        member,
        signature,
        body,
        timeout=timeout,
    )
    return reply[0]
