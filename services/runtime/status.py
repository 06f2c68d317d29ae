"""What is running on a gateway: the bus, each service's names and process."""

import json
from pathlib import Path
from typing import Any

from dbus_fast import DBusError

from services import contract as c
from services.bus import DBUS_NAME, DBUS_PATH, call, connect, list_names
from services.catalog import CATALOG
from services.runtime.supervisor import STATUS_FILE


def _runtime_file(state_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((state_dir / STATUS_FILE).read_text()).get("services", {})
    except (OSError, ValueError):
        return {}


async def gateway_status(address: str, state_dir: Path) -> dict[str, Any]:
    try:
        bus = await connect(address, timeout=2.0)
    except (OSError, TimeoutError, DBusError) as exc:
        return {"bus": "unreachable", "address": address, "error": str(exc), "services": []}
    try:
        names = set(await list_names(bus))
        runtime = _runtime_file(state_dir)
        specs = {s.name: s.bus_names for s in CATALOG.values()}
        # Protocols not in the catalog (third-party adapters) are services too.
        for name in sorted(n for n in names if n.startswith(c.PROTOCOL_NAME_PREFIX)):
            if not any(name in v for v in specs.values()):
                specs[c.protocol_short_name(name).lower()] = (name,)
        services = []
        for service, bus_names in specs.items():
            known = runtime.get(service, {})
            owned = bool(bus_names) and all(n in names for n in bus_names)
            if not owned and not known:
                continue  # not part of this gateway
            if owned:
                (pid,) = await call(
                    bus,
                    DBUS_NAME,
                    DBUS_PATH,
                    DBUS_NAME,
                    "GetConnectionUnixProcessID",
                    "s",
                    [bus_names[0]],
                )
                pid = pid or None  # 0: in a container, another pid namespace
                state = "running"
            else:
                # Absent from the bus, or not on it at all (the virtual BlueZ owns
                # org.bluez on its own bus): the runtime's word is all there is.
                pid = known.get("pid") if not bus_names else None
                state = (
                    known.get("state", "absent")
                    if not bus_names or known.get("state") != "running"
                    else "starting"
                )
            services.append(
                {
                    "name": service,
                    "state": state,
                    "pid": pid,
                    "restarts": known.get("restarts"),
                    "bus_names": list(bus_names),
                }
            )
        return {"bus": "reachable", "address": address, "services": services}
    finally:
        bus.disconnect()
