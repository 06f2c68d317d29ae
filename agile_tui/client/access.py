"""What the operator's role allows, known before a key is pressed: each action of
agile-tui that calls the gateway, and the bus method it calls (whose role the contract
says)."""

from services import contract as c
from services.contract import Role
from services.contract_api import ROLES

# binding id -> the method the action calls
ACTION_CALLS: dict[str, tuple[str, str]] = {
    "devices.discovery": (c.PROTOCOL_MANAGER_IFACE, "StartDiscovery"),
    "devices.permit_join": (c.PROTOCOL_IFACE, "PermitJoin"),
    "devices.zigbee_backup": (c.PROTOCOL_IFACE, "TakeBackup"),
    "devices.pair": (c.DEVICE_MANAGER_IFACE, "Register"),
    "devices.connect": (c.DEVICE_IFACE, "Connect"),
    "devices.read": (c.DEVICE_IFACE, "Read"),
    "devices.write": (c.DEVICE_IFACE, "Write"),
    "devices.execute": (c.DEVICE_IFACE, "Execute"),
    "devices.bridge": (c.BRIDGE_IFACE, "SetBridged"),
    "devices.remove": (c.DEVICE_MANAGER_IFACE, "Delete"),
    "firmware.update": (c.DEVICE_IFACE, "Update"),
    "containers.start": (c.RUNTIME_IFACE, "Start"),
    "containers.stop": (c.RUNTIME_IFACE, "Stop"),
    "containers.restart": (c.RUNTIME_IFACE, "Restart"),
    "containers.audit": (c.ACCESS_IFACE, "Audit"),
    "data.policy": (c.STORAGE_IFACE, "SetPolicy"),
    "images.build": (c.UPDATER_IFACE, "Build"),
    "updates.update": (c.UPDATER_IFACE, "Update"),
    "updates.all": (c.UPDATER_IFACE, "Update"),
    "updates.rollback": (c.UPDATER_IFACE, "Rollback"),
    "updates.cancel": (c.UPDATER_IFACE, "Cancel"),
    "build.stop": (c.UPDATER_IFACE, "Cancel"),
}


def needs(role: Role | None, binding_id: str) -> Role | None:
    """The role an action needs that `role` lacks; None if it may (or the role is not
    known yet: the gateway's own check answers then)."""
    call = ACTION_CALLS.get(binding_id)
    if role is None or call is None:
        return None
    need = ROLES[call[0]][call[1]]
    return need if role < need else None
