"""Following the DeviceManager's records: what Storage and the MQTT bridge both do."""

import contextlib
from collections.abc import Callable

from dbus_fast import DBusError, Message
from dbus_fast.aio import MessageBus

from services import contract as c
from services.bus import (
    DBUS_NAME,
    DBUS_PATH,
    add_match,
    call,
    match_rule,
    on_signal,
    watch_name_owners,
)


async def follow_device_manager(
    bus: MessageBus,
    on_record: Callable[[Message], None],
    on_owner_changed: Callable[[str, str, str], None],
) -> str:
    """Call `on_record` with every NewSubscribeValueSignal on the bus and
    `on_owner_changed(name, old, new)` when the DeviceManager comes or goes; its unique
    name now ("" while it is away). Records are only to be taken from that name."""
    iface, path, member = c.NEW_SUBSCRIBE_VALUE_SIGNAL
    on_signal(bus, iface, member, on_record, path=path)
    await add_match(bus, match_rule(type="signal", interface=iface, member=member, path=path))
    await watch_name_owners(bus, on_owner_changed, c.DEVICE_NAME)
    with contextlib.suppress(DBusError):
        (owner,) = await call(
            bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetNameOwner", "s", [c.DEVICE_NAME]
        )
        return str(owner)
    return ""


async def device_call(
    bus: MessageBus, device_id: str, member: str, signature: str = "", *body: object
) -> list[object]:
    """A method of one registered Device object (at the DeviceManager), its answer."""
    path = c.device_path(device_id)
    return await call(
        bus, c.DEVICE_NAME, path, c.DEVICE_IFACE, member, signature, list(body), timeout=15
    )
