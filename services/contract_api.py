"""AGILE's D-Bus API, method by method: what `org.eclipse.agail`'s Java interfaces
(`Device`, `DeviceManager`, `ProtocolManager`, `Protocol`, as agile-core's last release
pinned them) put on the bus. Contract tests introspect the running services against
this table, so a method cannot go missing or change its signature unnoticed.
Additions of this gateway are listed apart: AGILE clients never call them."""

from services import contract as c

# interface -> member -> (in signature, out signature)
Methods = dict[str, dict[str, tuple[str, str]]]

OVERVIEW = c.DeviceOverview.SIGNATURE
DEFINITION = c.DeviceDefinition.SIGNATURE
RECORD = c.RecordObject.SIGNATURE

AGILE_METHODS: Methods = {
    c.PROTOCOL_MANAGER_IFACE: {
        "Devices": ("", "a" + OVERVIEW),
        "Protocols": ("", "a" + c.ProtocolOverview.SIGNATURE),
        "DiscoveryStatus": ("", "a" + c.DiscoveryStatus.SIGNATURE),
        "StartDiscovery": ("", ""),
        "StopDiscovery": ("", ""),
        "Add": ("s", ""),
        "Remove": ("s", ""),
    },
    c.DEVICE_MANAGER_IFACE: {
        "Devices": ("", "a" + DEFINITION),
        "Find": ("", "s"),
        "MatchingDeviceTypes": (OVERVIEW, "as"),
        "Register": (OVERVIEW + "s", DEFINITION),
        "Read": ("s", DEFINITION),
        "Update": ("s" + DEFINITION, ""),
        "Delete": ("s", ""),
        "Batch": ("ss", ""),
    },
    c.DEVICE_IFACE: {
        "Id": ("", "s"),
        "Name": ("", "s"),
        "Status": ("", "(s)"),
        "Configuration": ("", "s"),
        "Profile": ("", "a" + c.DeviceComponent.SIGNATURE),
        "Definition": ("", DEFINITION),
        "LastUpdate": ("s", RECORD),
        "LastUpdateAll": ("", "a" + RECORD),
        "Data": ("", RECORD),
        "LastSeen": ("", "x"),
        "Protocol": ("", "s"),
        "Connect": ("", ""),
        "Disconnect": ("", ""),
        "Execute": ("s", ""),
        "Commands": ("", "as"),
        "Read": ("s", RECORD),
        "ReadAll": ("", "a" + RECORD),
        "Write": ("ss", ""),
        "Subscribe": ("s", ""),
        "Unsubscribe": ("s", ""),
        "Stop": ("", ""),
    },
    c.PROTOCOL_IFACE: {
        "Status": ("", "s"),
        "Driver": ("", "s"),
        "Name": ("", "s"),
        "Data": ("", "ay"),
        "Devices": ("", "a" + OVERVIEW),
        "DiscoveryStatus": ("", "s"),
        "StartDiscovery": ("", ""),
        "StopDiscovery": ("", ""),
        "Connect": ("s", ""),
        "Disconnect": ("s", ""),
        "DeviceStatus": ("s", "(s)"),
        "Read": ("sa{ss}", "ay"),
        "NotificationRead": ("sa{ss}", "ay"),
        "Write": ("sa{ss}ay", ""),
        "Subscribe": ("sa{ss}", ""),
        "Unsubscribe": ("sa{ss}", ""),
    },
}

# interface -> signal -> signature (sent from the paths in the contract's triples)
AGILE_SIGNALS: dict[str, dict[str, str]] = {
    c.PROTOCOL_MANAGER_IFACE: {"FoundNewDeviceSignal": OVERVIEW},
    c.DEVICE_IFACE: {"NewSubscribeValueSignal": RECORD},
    c.PROTOCOL_IFACE: {"NewRecordSignal": "aysa{ss}"},
}

ADDITIONS: Methods = {
    c.PROTOCOL_MANAGER_IFACE: {"DevicesInfo": ("", "a{sa{sv}}")},  # by device id
    c.DEVICE_MANAGER_IFACE: {"DevicesStatus": ("", "a{s(s)}")},
    c.DEVICE_IFACE: {"SetPrivate": ("sb", "")},  # records kept in memory only
    c.PROTOCOL_IFACE: {
        "DeviceInfo": ("s", "a{sv}"),
        "DevicesInfo": ("", "a{sa{sv}}"),
        "Characteristics": ("s", "a(ssas)"),
    },
}
