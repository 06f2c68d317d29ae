"""Listening to the records Device objects publish."""

import asyncio

from dbus_fast import Message

from services import contract as c
from services.bus import listen


async def listen_records(bus) -> asyncio.Queue[c.RecordObject]:
    queue: asyncio.Queue[c.RecordObject] = asyncio.Queue()
    iface, path, member = c.NEW_SUBSCRIBE_VALUE_SIGNAL

    def got(msg: Message) -> None:
        queue.put_nowait(c.RecordObject.from_wire(msg.body[0]))

    await listen(bus, (iface, path, member), got, c.DEVICE_NAME)
    return queue
