"""Run as another user by tests/roles.py: call each method listed on stdin or in
argv[2] (JSON: [[destination, path, interface, member, in_signature], ...]) on the bus
at argv[1] with arguments no method of that name takes, so that a call that is let
through acts on nothing, and print, per call, the error's name ("" for a call answered
without one). A bus that refuses the connection prints {"connect": "<why>"}."""

import asyncio
import json
import sys

from dbus_fast import AuthError, DBusError

from services.bus import call, connect


async def main(address: str, calls: list[list[str]]) -> dict[str, object]:
    try:
        bus = await connect(address, timeout=10)
    except (OSError, EOFError, TimeoutError, AuthError) as exc:  # what refused us
        return {"connect": f"{type(exc).__name__}: {exc}"}
    answers: dict[str, str] = {}
    for destination, path, interface, member, ins in calls:
        signature, body = ("ss", ["x", "y"]) if ins == "s" else ("s", ["x"])
        try:
            await call(bus, destination, path, interface, member, signature, body, timeout=10)
            answers[f"{interface}.{member}"] = ""
        except DBusError as exc:  # services.bus.call says a timeout as one too
            answers[f"{interface}.{member}"] = exc.type
    bus.disconnect()
    return {"answers": answers}


if __name__ == "__main__":
    calls = json.loads(sys.argv[2]) if len(sys.argv) > 2 else json.load(sys.stdin)
    print(json.dumps(asyncio.run(main(sys.argv[1], calls))))
