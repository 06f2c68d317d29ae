"""AGILE's D-Bus API, method by method: what `org.eclipse.agail`'s Java interfaces
(`Device`, `DeviceManager`, `ProtocolManager`, `Protocol`, as agile-core's last release
pinned them) put on the bus, and this gateway's additions, each with the role a caller
needs (viewer, operator, admin). Contract tests introspect the running services against
this table, so a method cannot go missing or change its signature unnoticed; the bus
policy and each service's own check are generated from it, and README's table of who
may do what. Additions are listed apart: AGILE clients never call them."""

from typing import NamedTuple

from services import contract as c
from services.contract import Role


class M(NamedTuple):
    """A method: its in and out signatures, and the role it needs."""

    ins: str
    outs: str
    role: Role


V, O, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN  # noqa: E741 - the table's columns

# interface -> member -> method
Methods = dict[str, dict[str, M]]

OVERVIEW = c.DeviceOverview.SIGNATURE
DEFINITION = c.DeviceDefinition.SIGNATURE
RECORD = c.RecordObject.SIGNATURE

AGILE_METHODS: Methods = {
    c.PROTOCOL_MANAGER_IFACE: {
        "Devices": M("", "a" + OVERVIEW, V),
        "Protocols": M("", "a" + c.ProtocolOverview.SIGNATURE, V),
        "DiscoveryStatus": M("", "a" + c.DiscoveryStatus.SIGNATURE, V),
        "StartDiscovery": M("", "", O),
        "StopDiscovery": M("", "", O),
        "Add": M("s", "", A),
        "Remove": M("s", "", A),
    },
    c.DEVICE_MANAGER_IFACE: {
        "Devices": M("", "a" + DEFINITION, V),
        "Find": M("", "s", V),
        "MatchingDeviceTypes": M(OVERVIEW, "as", V),
        "Register": M(OVERVIEW + "s", DEFINITION, O),
        "Read": M("s", DEFINITION, V),
        "Update": M("s" + DEFINITION, "", O),
        "Delete": M("s", "", A),
        "Batch": M("ss", "", O),
    },
    c.DEVICE_IFACE: {
        "Id": M("", "s", V),
        "Name": M("", "s", V),
        "Status": M("", "(s)", V),
        "Configuration": M("", "s", V),
        "Profile": M("", "a" + c.DeviceComponent.SIGNATURE, V),
        "Definition": M("", DEFINITION, V),
        "LastUpdate": M("s", RECORD, V),
        "LastUpdateAll": M("", "a" + RECORD, V),
        "Data": M("", RECORD, V),
        "LastSeen": M("", "x", V),
        "Protocol": M("", "s", V),
        "Connect": M("", "", O),
        "Disconnect": M("", "", O),
        "Execute": M("s", "", O),
        "Commands": M("", "as", V),
        "Read": M("s", RECORD, O),
        "ReadAll": M("", "a" + RECORD, O),
        "Write": M("ss", "", O),
        "Subscribe": M("s", "", O),
        "Unsubscribe": M("s", "", O),
        "Stop": M("", "", O),
    },
    c.PROTOCOL_IFACE: {
        "Status": M("", "s", V),
        "Driver": M("", "s", V),
        "Name": M("", "s", V),
        "Data": M("", "ay", V),
        "Devices": M("", "a" + OVERVIEW, V),
        "DiscoveryStatus": M("", "s", V),
        "StartDiscovery": M("", "", O),
        "StopDiscovery": M("", "", O),
        "Connect": M("s", "", O),
        "Disconnect": M("s", "", O),
        "DeviceStatus": M("s", "(s)", V),
        "Read": M("sa{ss}", "ay", O),
        "NotificationRead": M("sa{ss}", "ay", O),
        "Write": M("sa{ss}ay", "", O),
        "Subscribe": M("sa{ss}", "", O),
        "Unsubscribe": M("sa{ss}", "", O),
    },
}

# interface -> signal -> signature (sent from the paths in the contract's triples)
AGILE_SIGNALS: dict[str, dict[str, str]] = {
    c.PROTOCOL_MANAGER_IFACE: {"FoundNewDeviceSignal": OVERVIEW},
    c.DEVICE_IFACE: {"NewSubscribeValueSignal": RECORD},
    c.PROTOCOL_IFACE: {"NewRecordSignal": "aysa{ss}"},
}

ADDITIONS: Methods = {
    c.PROTOCOL_MANAGER_IFACE: {"DevicesInfo": M("", "a{sa{sv}}", V)},  # by device id
    c.DEVICE_MANAGER_IFACE: {"DevicesStatus": M("", "a{s(s)}", V)},
    c.DEVICE_IFACE: {
        "SetPrivate": M("sb", "", O),  # records kept in memory only
        # Followed streams (Storage, the MQTT bridge): every record once, in order.
        "Follow": M("ss", "", O),
        "Unfollow": M("ss", "", O),
        "Replay": M("st", "a" + c.SEQUENCED_SIGNATURE, O),
        "Sequence": M("s", "(tt)", V),
        # Its firmware, where its protocol updates it (ZigBee's OTA).
        "FirmwareVersion": M("", "s", V),
        "Firmware": M("", "a{sv}", V),
        "Update": M("", "", A),
    },
    c.PROTOCOL_IFACE: {
        "DeviceInfo": M("s", "a{sv}", V),
        "DevicesInfo": M("", "a{sa{sv}}", V),
        "Characteristics": M("s", "a(ssas)", V),
    },
    c.RUNTIME_IFACE: {
        "Services": M("", "a(sa{sv})", V),
        "Stop": M("s", "", A),
        "Start": M("s", "", A),
        "Restart": M("s", "", A),
    },
    c.UPDATER_IFACE: {
        "Plan": M("s", "(ssa(sa{sv}))", V),
        "Current": M("", c.Operation.SIGNATURE, V),
        "Update": M("assd", "s", A),
        "Rollback": M("s", "s", A),
        "InstallLocal": M("sd", "s", A),
        "Build": M("ss", "s", A),
        "Prune": M("", "s", A),
        "Cancel": M("", "b", A),
    },
    c.STORAGE_IFACE: {
        "Policy": M("ss", "a{sv}", V),
        "Policies": M("", "a(ssa{sv})", V),
        "Query": M("ssxxu", "a" + RECORD, V),
        "Latest": M("ss", RECORD, V),
        "Streams": M("", "a(ssa{sv})", V),
        "Stats": M("", "a{sv}", V),
        "SetPolicy": M("ssa{sv}", "a{sv}", O),
        "DeletePolicy": M("ss", "", O),
        "Flush": M("", "u", O),
    },
    c.BRIDGE_IFACE: {
        "Status": M("", "a{sv}", V),
        "Bridged": M("", "a{sb}", V),
        "BridgedStreams": M("", "a{sb}", V),
        "SetBridged": M("sb", "", O),
        "SetStreamBridged": M("ssb", "", O),
    },
    # Every service answers who a caller is, and (to admins) what its callers did.
    c.ACCESS_IFACE: {
        "WhoAmI": M("", c.CallerInfo.SIGNATURE, Role.NONE),
        "Audit": M("d", "a" + c.AuditEntry.SIGNATURE, A),
    },
}

# ZigBee's protocol object adds opening the network to joining devices, the network's
# backups (listed to all, taken by operators, read (they hold the network key) and
# restored by admins) and device firmware (updated by admins: an image can break one).
ZIGBEE_ADDITIONS: Methods = {
    c.PROTOCOL_IFACE: {
        "PermitJoin": M("u", "", O),
        "PermitJoinRemaining": M("", "u", V),
        "Backups": M("", "a" + c.ZigBeeBackup.SIGNATURE, V),
        "TakeBackup": M("", c.ZigBeeBackup.SIGNATURE, O),
        "ExportBackup": M("s", "s", A),
        "Restore": M("s", c.ZigBeeBackup.SIGNATURE, A),
        "Firmware": M("s", "a{sv}", V),
        "UpdateFirmware": M("s", "", A),
    },
}

# Batch's operations: a delete is a Delete.
BATCH_ROLES = {"delete": A}


def methods() -> Methods:
    """Every method of every interface, AGILE's and the additions."""
    merged: Methods = {}
    for table in (AGILE_METHODS, ADDITIONS, ZIGBEE_ADDITIONS):
        for iface, members in table.items():
            merged.setdefault(iface, {}).update(members)
    return merged


ROLES: dict[str, dict[str, Role]] = {
    iface: {member: m.role for member, m in members.items()} for iface, members in methods().items()
}

# What each service's own identity may call beyond a viewer (the container stack tells
# them apart by uid; on the native runtime they share one user, an admin).
SERVICE_CALLS: dict[str, frozenset[tuple[str, str]]] = {
    "protocolmanager": frozenset(
        (c.PROTOCOL_IFACE, m) for m in ("StartDiscovery", "StopDiscovery")
    ),
    "devicemanager": frozenset(
        (c.PROTOCOL_IFACE, m)
        for m in (
            "UpdateFirmware",  # a Device's Update, which an admin called
            "Connect",
            "Disconnect",
            "Read",
            "NotificationRead",
            "Write",
            "Subscribe",
            "Unsubscribe",
        )
    ),
    "storage": frozenset(
        (c.DEVICE_IFACE, m) for m in ("Follow", "Unfollow", "Replay", "SetPrivate")
    ),
    # A protocol adds itself to the ProtocolManager (its own name only: checked there).
    **{p: frozenset({(c.PROTOCOL_MANAGER_IFACE, "Add")}) for p in ("ble", "zigbee", "dummy")},
    # The update service backs the ZigBee network up before it updates the zigbee service,
    # and restores it when it rolls back.
    "updater": frozenset((c.PROTOCOL_IFACE, m) for m in ("TakeBackup", "ExportBackup", "Restore")),
    # MQTT commands (when switched on) are written with the bridge's own identity, and
    # installs from Home Assistant (when the admin allows them: mqtt:installs) started.
    "mqtt": frozenset(
        (c.DEVICE_IFACE, m) for m in ("Follow", "Unfollow", "Replay", "Write", "Execute", "Update")
    )
    | {(c.UPDATER_IFACE, "Update")},
}


# Who may send each interface's signals (the container stack's users; receivers check
# too, that a signal comes from the current owner of the name that emits it).
PROTOCOLS = ("ble", "zigbee", "dummy")
SIGNAL_SENDERS: dict[str, tuple[str, ...]] = {
    c.PROTOCOL_MANAGER_IFACE: PROTOCOLS,  # FoundNewDeviceSignal: AGILE has protocols send it
    c.PROTOCOL_IFACE: PROTOCOLS,
    c.DEVICE_IFACE: ("devicemanager",),
    c.STORAGE_IFACE: ("storage",),
    c.UPDATER_IFACE: ("updater",),
}


def roles_table() -> str:
    """README's table: every method and the role it needs."""
    rows = ["| interface | viewer | operator | admin |", "|---|---|---|---|"]
    for iface, members in ROLES.items():
        by_role = {r: sorted(m for m, need in members.items() if need == r) for r in Role}
        open_to_all = by_role[Role.NONE]
        viewer = by_role[V] + [f"{m} (anyone)" for m in open_to_all]
        cells = [", ".join(viewer), ", ".join(by_role[O]), ", ".join(by_role[A])]
        rows.append(f"| `{iface.removeprefix(c.PREFIX + '.')}` | " + " | ".join(cells) + " |")
    rows += ["", "| service's own identity | calls besides a viewer's |", "|---|---|"]
    for service, calls in SERVICE_CALLS.items():
        named = ", ".join(f"{i.removeprefix(c.PREFIX + '.')}.{m}" for i, m in sorted(calls))
        rows.append(f"| {service} | {named} |")
    return "\n".join(rows)
