"""A service container's HEALTHCHECK: its bus names are owned and their owner answers.

    python3 -m services.runtime.health org.eclipse.agail.Storage [...]

Exit 0 when every name answers org.freedesktop.DBus.Peer.Ping within the timeout,
1 otherwise (with the reason on stderr, which `docker inspect` shows).
"""

import asyncio
import sys

from dbus_fast import DBusError

from services.bus import BusNotFound, call, connect, resolve_bus_address

TIMEOUT_S = 3.0


async def problems(address: str, names: list[str]) -> list[str]:
    bus = await connect(address, timeout=TIMEOUT_S)
    try:
        found = []
        for name in names:
            try:
                await call(bus, name, "/", "org.freedesktop.DBus.Peer", "Ping", timeout=TIMEOUT_S)
            except DBusError as exc:
                found.append(f"{name}: {exc.text}")
        return found
    finally:
        bus.disconnect()


def main(argv: list[str] | None = None) -> int:
    names = sys.argv[1:] if argv is None else argv
    try:
        found = asyncio.run(problems(resolve_bus_address(), names))
    except (BusNotFound, OSError, TimeoutError) as exc:
        found = [f"gateway bus: {exc}"]
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
