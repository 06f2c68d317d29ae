"""The AGILE-compatible bus contract, shared by every service and by the TUI.

Wire names, object paths, struct signatures and error names follow AGILE's
`org.eclipse.agail` API so that an AGILE client works unchanged; additions are
marked as such.  Records are typed dataclasses with `to_wire`/`from_wire`
conversions so that no caller builds or picks apart positional lists by hand.
"""

import re
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Self

from dbus_fast import DBusError, Variant
from dbus_fast.annotations import DBusSignature

# --- bus names, object paths, interfaces ----------------------------------

PREFIX = "org.eclipse.agail"

PROTOCOL_MANAGER_NAME = f"{PREFIX}.ProtocolManager"
PROTOCOL_MANAGER_PATH = "/org/eclipse/agail/ProtocolManager"
PROTOCOL_MANAGER_IFACE = PROTOCOL_MANAGER_NAME

DEVICE_MANAGER_NAME = f"{PREFIX}.DeviceManager"
DEVICE_MANAGER_PATH = "/org/eclipse/agail/DeviceManager"
DEVICE_MANAGER_IFACE = DEVICE_MANAGER_NAME

# Device objects are exported by the DeviceManager process, which also owns
# this name so that AGILE clients addressing `org.eclipse.agail.Device` reach them.
DEVICE_NAME = f"{PREFIX}.Device"
DEVICE_IFACE = DEVICE_NAME
DEVICE_PATH_PREFIX = "/org/eclipse/agail/Device"

PROTOCOL_IFACE = f"{PREFIX}.Protocol"
PROTOCOL_NAME_PREFIX = f"{PREFIX}.protocol."
PROTOCOL_PATH_PREFIX = "/org/eclipse/agail/protocol"

# Addition: the native runtime's supervisor, to start, stop and restart its services.
RUNTIME_NAME = f"{PREFIX}.Runtime"
RUNTIME_PATH = "/org/eclipse/agail/Runtime"
RUNTIME_IFACE = RUNTIME_NAME

# Addition: the update service, the one piece that drives the Docker engine.
UPDATER_NAME = f"{PREFIX}.Updater"
UPDATER_PATH = "/org/eclipse/agail/Updater"
UPDATER_IFACE = UPDATER_NAME
UPDATER_BUSY_ERROR = f"{UPDATER_NAME}.Error.Busy"
UPDATER_FAILED_ERROR = f"{UPDATER_NAME}.Error.Failed"

# Addition: the MQTT bridge, where data leaves the gateway (AGILE used Node-RED nodes).
BRIDGE_NAME = f"{PREFIX}.Bridge"
BRIDGE_PATH = "/org/eclipse/agail/Bridge"
BRIDGE_IFACE = BRIDGE_NAME

# Addition: on every service's connection, who a caller is and what callers did there.
ACCESS_PATH = "/org/eclipse/agail/Access"
ACCESS_IFACE = f"{PREFIX}.Access"

STORAGE_NAME = f"{PREFIX}.Storage"  # addition: AGILE stored data in a web service
STORAGE_PATH = "/org/eclipse/agail/Storage"
STORAGE_IFACE = STORAGE_NAME

# Signals, with AGILE's (interface, path, member) triples.
FOUND_NEW_DEVICE_SIGNAL = (
    PROTOCOL_MANAGER_IFACE,
    "/org/eclipse/agail/NewDevice",
    "FoundNewDeviceSignal",
)
NEW_RECORD_SIGNAL = (PROTOCOL_IFACE, "/org/eclipse/agail/NewRecord", "NewRecordSignal")
NEW_SUBSCRIBE_VALUE_SIGNAL = (
    DEVICE_IFACE,
    "/org/eclipse/agail/NewRecord/Subscribe",
    "NewSubscribeValueSignal",
)
# Addition: a followed stream's records with their sequence numbers, `((sssssx)t)`.
# Storage's writes failed (paused, why) or succeed again (False, ""): a full disk said.
STORAGE_WRITE_STATUS_SIGNAL = (STORAGE_IFACE, STORAGE_PATH, "WriteStatus")
SEQUENCED_VALUE_SIGNAL = (DEVICE_IFACE, "/org/eclipse/agail/NewRecord/Sequenced", "SequencedValue")
REPLAY_BATCH = 1000  # records at most per Device.Replay answer


def protocol_bus_name(short: str) -> str:
    """`BLE` -> `org.eclipse.agail.protocol.BLE`."""
    return PROTOCOL_NAME_PREFIX + short


def protocol_path(short: str) -> str:
    return f"{PROTOCOL_PATH_PREFIX}/{short}"


def protocol_short_name(bus_name: str) -> str:
    """`org.eclipse.agail.protocol.BLE` -> `BLE` (a bare short name is returned as is)."""
    return bus_name.removeprefix(PROTOCOL_NAME_PREFIX)


def device_id(protocol: str, address: str) -> str:
    """AGILE's device id: lower-case protocol short name + address without ':'.

    >>> device_id("org.eclipse.agail.protocol.BLE", "5C:31:3E:08:59:DD")
    'ble5C313E0859DD'
    """
    return protocol_short_name(protocol).lower() + address.replace(":", "")


# --- limits: what a client can store, and what a reply carries -------------------
#
# Every string a client can make a service keep has a maximum and a character set,
# checked where it enters (InvalidArgs naming the limit); every count has a maximum.
# The maxima are chosen so that the largest list reply they allow stays under the
# bus's message limit (BUS_MESSAGE_MAX; tests fill each list to its maximum), and
# `limits_table()` is README's table of them.

BUS_MESSAGE_MAX = 4 * 1024 * 1024  # dbus-daemon's max_message_size (services/busconfig.py)

DEVICE_ID_MAX = 96  # characters, [A-Za-z0-9_]: an object path element
ADDRESS_MAX = 64  # a protocol address: characters, printable, no "/"
NAME_MAX = 128  # a device's name: characters, printable
COMPONENT_ID_MAX = 128  # characters: MQTT topic levels of [A-Za-z0-9_.:-] joined by "/"
UNIT_MAX = 16  # a component's unit or format: characters, printable (device types say)
CONSUMER_MAX = 255  # a follower's bus name (D-Bus's own limit)
RECORD_VALUE_MAX = 1024  # UTF-8 bytes of a record's value (a 512-byte GATT value as hex)
DEVICES_MAX = 200  # registered devices (a ZigBee coordinator's table is about this)
STREAMS_MAX = 64  # components of one device
FOLLOWERS_MAX = 16  # consumers following one stream
POLICIES_MAX = 4096  # Storage's recording policies
BRIDGE_OFF_MAX = 1024  # devices and streams switched off at the bridge
DISCOVERED_MAX = 1000  # devices the ProtocolManager lists as discovered
QUERY_POINTS_MAX = 2000  # records per Storage.Query answer (0 asks for this many)
DURATION_MAX_MS = 100 * 365 * 86_400_000  # a policy's retention or interval: 100 years


@dataclass(frozen=True, slots=True)
class Limit:
    what: str
    maximum: int
    unit: str
    checked: str  # where it enters


LIMITS = (
    Limit("device id", DEVICE_ID_MAX, "characters `[A-Za-z0-9_]`", "Register, every id argument"),
    Limit("address", ADDRESS_MAX, "printable characters, no `/`", "Register"),
    Limit("device name", NAME_MAX, "printable characters", "Register, Update"),
    Limit(
        "component id",
        COMPONENT_ID_MAX,
        "characters: levels of `[A-Za-z0-9_.:-]` joined by `/` (MQTT topic levels)",
        "every component argument; SetPolicy, SetStreamBridged",
    ),
    Limit("unit, format", UNIT_MAX, "printable characters", "device types, stored devices"),
    Limit("consumer", CONSUMER_MAX, "characters: a well-known bus name", "Follow, Unfollow"),
    Limit(
        "record value", RECORD_VALUE_MAX, "UTF-8 bytes", "records from a radio (longer: skipped)"
    ),
    Limit("registered devices", DEVICES_MAX, "devices", "Register"),
    Limit("components of a device", STREAMS_MAX, "components", "Register (generic types)"),
    Limit("followers of a stream", FOLLOWERS_MAX, "consumers", "Follow"),
    Limit("recording policies", POLICIES_MAX, "policies", "SetPolicy"),
    Limit(
        "switched off at the bridge",
        BRIDGE_OFF_MAX,
        "devices + streams",
        "SetBridged, SetStreamBridged",
    ),
    Limit(
        "discovered devices", DISCOVERED_MAX, "devices (the oldest seen go)", "FoundNewDeviceSignal"
    ),
    Limit("history answer", QUERY_POINTS_MAX, "records (downsampled)", "Storage.Query"),
    Limit("replay answer", REPLAY_BATCH, "records (paged by number)", "Device.Replay"),
    Limit("retention, interval", DURATION_MAX_MS // 86_400_000, "days", "SetPolicy"),
)


def limits_table() -> str:
    rows = [f"| {x.what} | {x.maximum:,} | {x.unit} | {x.checked} |" for x in LIMITS]
    return "\n".join(["| what | at most | of | checked at |", "|---|---|---|---|", *rows])


_DEVICE_ID_RE = re.compile(rf"^[A-Za-z0-9_]{{1,{DEVICE_ID_MAX}}}$")
_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:-]+)*$")


def valid_device_id(value: str) -> bool:
    """Device ids become object path elements, so only [A-Za-z0-9_] is allowed."""
    return bool(_DEVICE_ID_RE.match(value))


def valid_component_id(value: str) -> bool:
    """Component ids are short names ("temperature", a generic BLE device's "180d/2a37")
    that become MQTT topic levels: no wildcard, no empty level, never a 4 MB string."""
    return len(value) <= COMPONENT_ID_MAX and bool(_COMPONENT_RE.match(value))


def check_device_id(value: str) -> str:
    if not valid_device_id(value):
        raise InvalidArgs(
            f"not a device id: {_quoted(value)} (1 to {DEVICE_ID_MAX} of [A-Za-z0-9_])"
        )
    return value


def check_component_id(value: str) -> str:
    if not valid_component_id(value):
        raise InvalidArgs(
            f"not a component id: {_quoted(value)} (1 to {COMPONENT_ID_MAX} characters: "
            "levels of [A-Za-z0-9_.:-] joined by '/')"
        )
    return value


def check_text(value: str, what: str, maximum: int, allow_empty: bool = False) -> str:
    """A printable string a service keeps: at most `maximum` characters."""
    if len(value) > maximum or not value.isprintable() or (not value and not allow_empty):
        raise InvalidArgs(
            f"{what} must be {'0' if allow_empty else '1'} to {maximum} printable characters, "
            f"not {_quoted(value)}"
        )
    return value


def check_count(count: int, maximum: int, what: str) -> None:
    """Before one more is kept: refuse past the limit."""
    if count >= maximum:
        raise InvalidArgs(f"{what}: the limit of {maximum:,} is reached")


def _quoted(value: str) -> str:
    return repr(cut(value))


def cut(value: str, keep: int = 60) -> str:
    """A client's string as a log line or an error quotes it: never 4 MB of it."""
    return value if len(value) <= keep + 20 else f"{value[:keep]}... ({len(value):,} characters)"


def device_path(dev_id: str) -> str:
    return f"{DEVICE_PATH_PREFIX}/{dev_id}"


# --- roles: who may do what ------------------------------------------------------


class Role(IntEnum):
    """What a caller may do; each role may do what the ones below it may (addition)."""

    NONE = 0
    VIEWER = 1  # lists, queries, plans, status
    OPERATOR = 2  # discovery, pairing, read/write/execute, subscriptions, policies
    ADMIN = 3  # updates, builds, runtime control, protocols, deleting devices

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, name: str) -> "Role":
        return cls[name.upper()]


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """Who a service takes a caller for, `(suss)`: user name, uid, role, and the
    service whose identity it is ("" for a person)."""

    user: str
    uid: int
    role: Role
    service: str = ""

    SIGNATURE = "(suss)"

    def to_wire(self) -> list[Any]:
        return [self.user, self.uid, str(self.role), self.service]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        user, uid, role, service = value
        return cls(user, int(uid), Role.named(role), service)


@dataclass(frozen=True, slots=True)
class ZigBeeBackup:
    """A ZigBee network backup the gateway keeps, `(tsu)`: taken (epoch ms), its file's
    name, how many devices it lists."""

    time_ms: int
    name: str
    devices: int

    SIGNATURE = "(tsu)"

    def to_wire(self) -> list[Any]:
        return [self.time_ms, self.name, self.devices]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        time_ms, name, devices = value
        return cls(int(time_ms), name, int(devices))


@dataclass(frozen=True, slots=True)
class FirmwareStatus:
    """A device's firmware as its Device's `Firmware()` says it (a{sv}): the version it
    runs, the newest image offered (0: none), and an update's state and bytes."""

    version: int
    available: int
    state: str
    target: int = 0
    done: int = 0
    total: int = 0
    said: str = ""

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Self:
        def value(key: str, default: Any) -> Any:
            got = info.get(key, default)
            return getattr(got, "value", got)  # a Variant, or a plain value

        return cls(
            int(value("Version", 0)),
            int(value("Available", 0)),
            str(value("State", "idle")),
            int(value("Target", 0)),
            int(value("Done", 0)),
            int(value("Total", 0)),
            str(value("Said", "")),
        )

    def to_info(self) -> dict[str, Variant]:
        return {
            "Version": Variant("u", self.version),
            "Available": Variant("u", self.available),
            "State": Variant("s", self.state),
            "Target": Variant("u", self.target),
            "Done": Variant("u", self.done),
            "Total": Variant("u", self.total),
            "Said": Variant("s", self.said),
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operator or admin action, `(dsussss)`: when (epoch s), who (user, uid), the
    service that acted, the call (Interface.Member), its arguments (cut), the outcome
    ("ok", or the error's name and text)."""

    when: float
    user: str
    uid: int
    service: str
    call: str
    arguments: str
    outcome: str

    SIGNATURE = "(dsussss)"

    def to_wire(self) -> list[Any]:
        return [
            self.when,
            self.user,
            self.uid,
            self.service,
            self.call,
            self.arguments,
            self.outcome,
        ]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        when, user, uid, service, call, arguments, outcome = value
        return cls(float(when), user, int(uid), service, call, arguments, outcome)


# --- statuses --------------------------------------------------------------


class DeviceAvailability(StrEnum):
    """DeviceOverview.status: what a protocol says of a discovered device."""

    AVAILABLE = "AVAILABLE"
    CONNECTED = "CONNECTED"
    UNAVAILABLE = "UNAVAILABLE"


class DeviceStatus(StrEnum):
    """StatusType of a registered device (AGILE's DeviceStatusType)."""

    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    ON = "ON"
    OFF = "OFF"
    ERROR = "ERROR"


class DiscoveryState(StrEnum):
    RUNNING = "RUNNING"
    NONE = "NONE"
    FAILURE = "FAILURE"


class ProtocolState(StrEnum):
    """A protocol's own Status()."""

    AVAILABLE = "AVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"  # e.g. no radio plugged in
    FAILURE = "FAILURE"


def overview_status(state: str) -> str:
    """A protocol's Status() as the ProtocolManager lists it: AGILE wrote "Available"."""
    return state.capitalize()


# --- errors ----------------------------------------------------------------

NO_RESULT_ERROR = f"{PREFIX}.exception.AgileNoResultException"
DEVICE_NOT_FOUND_ERROR = f"{PREFIX}.exception.AgileDeviceNotFoundException"
INVALID_ARGS_ERROR = "org.freedesktop.DBus.Error.InvalidArgs"
# Additions, for Storage: a write failed (e.g. disk full; nothing stored is lost),
# and stored data failed its integrity check (tampered, or the wrong key).
STORAGE_ERROR = f"{PREFIX}.exception.AgileStorageException"
STORAGE_INTEGRITY_ERROR = f"{PREFIX}.exception.AgileStorageIntegrityException"
# An addition, for Device calls: the device's protocol service is not on the bus (yet;
# a restarted bus restarts it too). Unlike NoResult it says "ask again soon".
PROTOCOL_UNAVAILABLE_ERROR = f"{PREFIX}.exception.AgileProtocolUnavailableException"
# A caller's role does not allow the call; the text names the role needed.
ACCESS_DENIED_ERROR = f"{PREFIX}.exception.AgileAccessDeniedException"


ERROR_TEXT_MAX = 2_000  # an error quoting a 4 MB argument says so, not all of it


class _AgileError(DBusError):
    NAME = ""

    def __init__(self, text: str) -> None:
        if len(text) > ERROR_TEXT_MAX:
            text = f"{text[:ERROR_TEXT_MAX]}... ({len(text) - ERROR_TEXT_MAX:,} characters cut)"
        super().__init__(self.NAME, text)


class NoResult(_AgileError):
    NAME = NO_RESULT_ERROR


class ProtocolUnavailable(_AgileError):
    NAME = PROTOCOL_UNAVAILABLE_ERROR


class DeviceNotFound(_AgileError):
    NAME = DEVICE_NOT_FOUND_ERROR


class InvalidArgs(_AgileError):
    NAME = INVALID_ARGS_ERROR


class AccessDenied(_AgileError):
    NAME = ACCESS_DENIED_ERROR


# --- records -----------------------------------------------------------------


def _strings(value: Any, n: int, what: str) -> list[str]:
    if not isinstance(value, list | tuple) or len(value) != n:
        raise InvalidArgs(f"{what}: expected a struct of {n} fields, got {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgs(f"{what}: every field must be a string, got {value!r}")
    return list(value)


@dataclass(frozen=True, slots=True)
class DeviceOverview:
    """A discovered device, `(ssss)`."""

    id: str  # protocol address, e.g. 5C:31:3E:08:59:DD
    protocol: str  # bus name of the protocol
    name: str
    status: str = DeviceAvailability.AVAILABLE

    SIGNATURE = "(ssss)"

    def to_wire(self) -> list[str]:
        return [self.id, self.protocol, self.name, str(self.status)]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        return cls(*_strings(value, 4, "DeviceOverview"))

    @property
    def device_id(self) -> str:
        return device_id(self.protocol, self.id)


@dataclass(frozen=True, slots=True)
class DeviceComponent:
    """A component (sensor or actuator) of a device, `(ss)`."""

    id: str
    unit: str

    SIGNATURE = "(ss)"

    def to_wire(self) -> list[str]:
        return [self.id, self.unit]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        return cls(*_strings(value, 2, "DeviceComponent"))


@dataclass(frozen=True, slots=True)
class DeviceDefinition:
    """A registered device, `(ssssssa(ss))`."""

    device_id: str
    address: str
    name: str
    description: str
    protocol: str
    path: str
    streams: tuple[DeviceComponent, ...] = field(default_factory=tuple)

    SIGNATURE = "(ssssssa(ss))"

    def to_wire(self) -> list[Any]:
        return [
            self.device_id,
            self.address,
            self.name,
            self.description,
            self.protocol,
            self.path,
            [s.to_wire() for s in self.streams],
        ]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        if not isinstance(value, list | tuple) or len(value) != 7:
            raise InvalidArgs(f"DeviceDefinition: expected 7 fields, got {value!r}")
        device_id, address, name, description, protocol, path = _strings(
            value[:6], 6, "DeviceDefinition"
        )
        streams = tuple(DeviceComponent.from_wire(s) for s in value[6])
        return cls(device_id, address, name, description, protocol, path, streams)


@dataclass(frozen=True, slots=True)
class RecordObject:
    """One value of one component, `(sssssx)`; last_update is epoch ms."""

    device_id: str
    component_id: str
    value: str
    unit: str
    format: str
    last_update: int

    SIGNATURE = "(sssssx)"

    def to_wire(self) -> list[Any]:
        return [
            self.device_id,
            self.component_id,
            self.value,
            self.unit,
            self.format,
            int(self.last_update),
        ]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        if not isinstance(value, list | tuple) or len(value) != 6:
            raise InvalidArgs(f"RecordObject: expected 6 fields, got {value!r}")
        device_id, component_id, value_, unit, format_ = _strings(value[:5], 5, "RecordObject")
        return cls(device_id, component_id, value_, unit, format_, int(value[5]))


@dataclass(frozen=True, slots=True)
class ProtocolOverview:
    """A registered protocol, `(ssss)` in AGILE's order: id ("BLE"), name ("Bluetooth LE"),
    bus name, status ("Available", AGILE's spelling; `overview_status`)."""

    id: str
    name: str
    dbus_interface: str
    status: str

    SIGNATURE = "(ssss)"

    def to_wire(self) -> list[str]:
        return [self.id, self.name, self.dbus_interface, self.status]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        return cls(*_strings(value, 4, "ProtocolOverview"))


@dataclass(frozen=True, slots=True)
class DiscoveryStatus:
    """Discovery state of one protocol, `(ss)`: protocol bus name, state."""

    name: str
    status: str

    SIGNATURE = "(ss)"

    def to_wire(self) -> list[str]:
        return [self.name, self.status]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        return cls(*_strings(value, 2, "DiscoveryStatus"))


class OperationState(StrEnum):
    """Where an update service operation is (addition)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled back"  # the new version was not healthy; the previous one runs
    FAILED = "failed"  # nothing changed, or the message says what did
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """What updating one service image takes, `(sa{sv})` (addition): the bytes its pull
    downloads, or why there is no plan."""

    service: str
    running: str = ""  # the running image's version (or short id); "" if none
    reference: str = ""  # registry/agile/service:strategy
    version: str = ""  # the registry image's version
    download_bytes: int = 0  # what the update downloads, by `method`
    layers_missing: int = 0
    layers_total: int = 0
    up_to_date: bool = False
    problem: str = ""  # why there is no plan ("" if there is one)
    short: str = ""  # the same in a few words
    # "delta": a published bundle from an image here; "layers": only the layer blobs
    # not here (the engine's pull would download again layers it has by `docker load`)
    method: str = "pull"
    pull_bytes: int = 0  # what a pull downloads
    delta_bytes: int = 0  # what the bundle downloads (0: none published for here)
    seconds: float = 0.0  # the download's predicted time at link_bit_s (0: rate unknown)
    link_bit_s: float = 0.0  # the gateway's link rate the prediction takes
    link_source: str = ""  # "measured" (from recent downloads) or "set" (an option)
    # The signed release: its number, the release keys that signed it, and when the
    # metadata it rests on expires (ISO 8601); release 0 with `unsigned`: an image no key
    # signed, planned only because updater:allow-unsigned is on.
    release: int = 0
    signed_by: str = ""
    expires: str = ""
    unsigned: bool = False
    metadata_bytes: int = 0  # what checking the signatures downloaded
    refused: bool = False  # the problem is the trust policy's: this release must not run

    SIGNATURE = "(sa{sv})"
    _TYPES = {
        "seconds": "d",
        "link_bit_s": "d",
        "download_bytes": "t",
        "layers_missing": "u",
        "layers_total": "u",
        "up_to_date": "b",
        "pull_bytes": "t",
        "delta_bytes": "t",
        "release": "t",
        "unsigned": "b",
        "metadata_bytes": "t",
        "refused": "b",
    }

    def to_wire(self) -> list[Any]:
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "service"}
        return [
            self.service,
            {k: Variant(self._TYPES.get(k, "s"), v) for k, v in fields.items()},
        ]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        service, info = value
        known = set(cls.__dataclass_fields__)
        return cls(service, **{k: v.value for k, v in info.items() if k in known})

    @property
    def has_plan(self) -> bool:
        return not self.problem


@dataclass(frozen=True, slots=True)
class Operation:
    """An update service operation, `(sssssddas)` (addition): the one running, or the
    last one. `id` is "" when there has been none."""

    id: str = ""
    kind: str = ""  # update, rollback, build, prune
    target: str = ""  # what it works on, e.g. "storage" or "storage multistage"
    state: str = ""
    message: str = ""  # how it ended
    started: float = 0.0  # wall clock
    ended: float = 0.0
    lines: tuple[str, ...] = ()  # what it said so far (the last ones)

    SIGNATURE = "(sssssddas)"

    def to_wire(self) -> list[Any]:
        return [
            self.id,
            self.kind,
            self.target,
            self.state,
            self.message,
            self.started,
            self.ended,
            list(self.lines),
        ]

    @classmethod
    def from_wire(cls, value: Any) -> Self:
        op_id, kind, target, state, message, started, ended, lines = value
        return cls(op_id, kind, target, state, message, started, ended, tuple(lines))

    @property
    def running(self) -> bool:
        return self.state == OperationState.RUNNING


# --- D-Bus signature annotations for service methods ---------------------------

Str = Annotated[str, DBusSignature("s")]
StrList = Annotated[list[str], DBusSignature("as")]
Int64 = Annotated[int, DBusSignature("x")]
UInt32 = Annotated[int, DBusSignature("u")]
UInt64 = Annotated[int, DBusSignature("t")]
Bytes = Annotated[bytes, DBusSignature("ay")]
Profile = Annotated[dict[str, str], DBusSignature("a{ss}")]
StatusWire = Annotated[list[str], DBusSignature("(s)")]
OverviewWire = Annotated[list[str], DBusSignature(DeviceOverview.SIGNATURE)]
OverviewListWire = Annotated[list[list[str]], DBusSignature("a" + DeviceOverview.SIGNATURE)]
ProtocolListWire = Annotated[list[list[str]], DBusSignature("a" + ProtocolOverview.SIGNATURE)]
DiscoveryListWire = Annotated[list[list[str]], DBusSignature("a" + DiscoveryStatus.SIGNATURE)]
DefinitionWire = Annotated[list[Any], DBusSignature(DeviceDefinition.SIGNATURE)]
DefinitionListWire = Annotated[list[list[Any]], DBusSignature("a" + DeviceDefinition.SIGNATURE)]
RecordWire = Annotated[list[Any], DBusSignature(RecordObject.SIGNATURE)]
ComponentListWire = Annotated[list[list[str]], DBusSignature("a" + DeviceComponent.SIGNATURE)]
RecordListWire = Annotated[list[list[Any]], DBusSignature("a" + RecordObject.SIGNATURE)]
SEQUENCED_SIGNATURE = f"({RecordObject.SIGNATURE}t)"
SequencedListWire = Annotated[list[list[Any]], DBusSignature("a" + SEQUENCED_SIGNATURE)]
SeqBoundsWire = Annotated[list[int], DBusSignature("(tt)")]

# NewRecordSignal's arguments: the raw value, the device's address, the profile.
NewRecordWire = Annotated[list[Any], DBusSignature("aysa{ss}")]
VariantDict = Annotated[dict[str, Any], DBusSignature("a{sv}")]
StatusByDevice = Annotated[dict[str, list[str]], DBusSignature("a{s(s)}")]
InfoByAddress = Annotated[dict[str, dict[str, Any]], DBusSignature("a{sa{sv}}")]
CharacteristicListWire = Annotated[list[list[Any]], DBusSignature("a(ssas)")]
NamedInfoListWire = Annotated[list[list[Any]], DBusSignature("a(sa{sv})")]
PolicyListWire = Annotated[list[list[Any]], DBusSignature("a(ssa{sv})")]
Bool = Annotated[bool, DBusSignature("b")]
BackupWire = Annotated[list[Any], DBusSignature(ZigBeeBackup.SIGNATURE)]
BackupListWire = Annotated[list[list[Any]], DBusSignature("a" + ZigBeeBackup.SIGNATURE)]
BoolByDevice = Annotated[dict[str, bool], DBusSignature("a{sb}")]
BoolByStream = BoolByDevice  # keyed DEVICE/COMPONENT
Double = Annotated[float, DBusSignature("d")]
StrPair = Annotated[list[str], DBusSignature("ss")]
BoolStr = Annotated[list[object], DBusSignature("bs")]
StrTriple = Annotated[list[str], DBusSignature("sss")]
ProgressWire = Annotated[list[Any], DBusSignature("sstt")]  # operation, layer, done, total
# Plan's answer: the registry, the strategy, and what each service image's update takes.
PlanWire = Annotated[list[Any], DBusSignature("(ssa" + ServicePlan.SIGNATURE + ")")]
OperationWire = Annotated[list[Any], DBusSignature(Operation.SIGNATURE)]
CallerInfoWire = Annotated[list[Any], DBusSignature(CallerInfo.SIGNATURE)]
AuditListWire = Annotated[list[list[Any]], DBusSignature("a" + AuditEntry.SIGNATURE)]

# BLE profile keys: AGILE's spelling, and the correct one, both accepted.
GATT_SERVICE = "GATT_SERVICE"
GATT_CHARACTERISTIC_KEYS = ("GATT_CHARACTERSTICS", "GATT_CHARACTERISTICS")
