"""Run as another user by tests/roles.py: call each method listed on stdin or in
argv[2] (JSON: [[destination, path, interface, member, in_signature], ...]) on the bus
at argv[1] with
arguments of the wrong signature, so that a call that is let through acts on nothing,
and print, per call, the error's name ("" for a call answered without one). A bus
that refuses the connection prints {"connect": "<why>"}."""

import asyncio
import json
import sys

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus


async def main(address: str, calls: list[list[str]]) -> dict[str, object]:
    try:
        bus = await asyncio.wait_for(MessageBus(bus_address=address).connect(), 10)
    except Exception as exc:
        return {"connect": f"{type(exc).__name__}: {exc}"}
    answers: dict[str, str] = {}
    for destination, path, interface, member, ins in calls:
        # Arguments no method of the gateway takes with that name: a call let through
        # is refused by its signature, having done nothing.
        signature, body = ("ss", ["x", "y"]) if ins == "s" else ("s", ["x"])
        msg = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body,
        )
        try:
            reply = await asyncio.wait_for(bus.call(msg), 10)
        except TimeoutError:
            answers[f"{interface}.{member}"] = "no answer"
            continue
        assert reply is not None
        answers[f"{interface}.{member}"] = (
            reply.error_name or "" if reply.message_type == MessageType.ERROR else ""
        )
    bus.disconnect()
    return {"answers": answers}


if __name__ == "__main__":
    calls = json.loads(sys.argv[2]) if len(sys.argv) > 2 else json.load(sys.stdin)
    print(json.dumps(asyncio.run(main(sys.argv[1], calls))))
