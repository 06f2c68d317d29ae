"""Finding, joining and serving on the gateway bus (dbus-fast), for services and clients.

Calls go out as raw messages with a timeout rather than through proxy objects:
that saves an introspection round trip per object (which matters on a Pi) and a
peer that never answers cannot hang the caller.
"""

import asyncio
import contextvars
import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.auth import UID_NOT_SPECIFIED, AuthExternal
from dbus_fast.constants import NameFlag, RequestNameReply
from dbus_fast.service import ServiceInterface

from services.contract import INVALID_ARGS_ERROR
from services.errors import BusError

log = logging.getLogger(__name__)

BUS_ADDRESS_ENV = "AGILE_BUS_ADDRESS"
STATE_DIR_ENV = "AGILE_STATE_DIR"
ADDRESS_FILE = "bus.address"
DEFAULT_CALL_TIMEOUT = 5.0

DBUS_NAME = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"
UNKNOWN_OBJECT_ERROR = "org.freedesktop.DBus.Error.UnknownObject"
# Interfaces every path answers (the object tree's nodes, the connection itself).
ANY_PATH_INTERFACES = ("org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer")


class BusNotFound(BusError, RuntimeError):
    """No gateway bus address could be found; the message says where we looked."""


def default_state_dir() -> Path:
    if env := os.environ.get(STATE_DIR_ENV):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "agile-gateway"


def resolve_bus_address(explicit: str | None = None, state_dir: Path | None = None) -> str:
    """The gateway bus: `--bus ADDRESS`, else $AGILE_BUS_ADDRESS, else the state folder's file."""
    if explicit:
        return explicit
    if env := os.environ.get(BUS_ADDRESS_ENV):
        return env
    folder = state_dir or default_state_dir()
    address_file = folder / ADDRESS_FILE
    try:
        address = address_file.read_text().strip()
    except PermissionError:
        # Another user of a role group: let through to the socket, not to the files.
        socket_path = folder / "bus.sock"
        if socket_path.is_socket():
            return f"unix:path={socket_path.resolve()}"
        raise BusNotFound(f"no gateway bus: {address_file} is not readable by you") from None
    except OSError as exc:
        raise BusNotFound(
            f"no gateway bus: no --bus, no ${BUS_ADDRESS_ENV}, and {address_file} is not "
            f"readable ({exc.strerror}); is the gateway running (agile-gateway up)?"
        ) from None
    if not address:
        raise BusNotFound(f"no gateway bus: {address_file} is empty")
    return address


class PatientSocket:
    """dbus-fast takes a full socket buffer (EAGAIN on send) for the end of the
    connection, and a service that answers a large reply to a slow reader exits
    (python-dbus-next issue 153, still so in dbus-fast 5). Sent nothing, say 0 bytes:
    its writer then waits for the socket to be writable, as it does after a partial
    send."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, data: bytes | memoryview) -> int:
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0

    def sendmsg(self, buffers: list[memoryview], ancdata: list[tuple[int, int, bytes]]) -> int:
        try:
            return self._sock.sendmsg(buffers, ancdata)
        except BlockingIOError:
            return 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


def _patient_writers() -> None:
    """Every dbus-fast connection of this process (bleak's too) gets a PatientSocket."""
    from dbus_fast.aio import message_bus

    writer = message_bus._MessageWriter
    if getattr(writer, "_agile_patient", False):
        return
    original = writer.__init__

    def init(self: Any, bus: MessageBus) -> None:  # dbus-fast's private writer
        original(self, bus)
        self.sock = PatientSocket(self.sock)

    writer.__init__ = init  # type: ignore[method-assign]  # the patch itself
    writer._agile_patient = True  # type: ignore[attr-defined]  # our mark on it


_patient_writers()


_Bus = TypeVar("_Bus", bound=MessageBus)


def loss_noted(bus: _Bus) -> _Bus:
    """Mark the bus's loss as seen even when no one awaits wait_for_disconnect().

    dbus-fast ends that future with the EOFError of a bus that went away; unawaited,
    asyncio logs "Future exception was never retrieved" whenever it is collected,
    which lands in whatever runs then. The future has no public handle, hence the
    private attribute (read defensively: a rename must not break connecting).
    """
    lost = getattr(bus, "_disconnect_future", None)
    if lost is not None:
        lost.add_done_callback(lambda f: f.cancelled() or f.exception())
    return bus


class GatewayBus(MessageBus):
    """dbus-fast's bus, with a hook that sees every message it sends (a service's gate
    learns how a call ended from its reply: services.access) and the owners of the
    names whose signals it takes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_send: Callable[[Message], None] | None = None
        self.owners = NameOwners(self)

    def send(self, msg: Message) -> asyncio.Future[None]:  # type: ignore[override]  # as dbus-fast's own aio bus (its base says None)
        if self.on_send is not None:
            self.on_send(msg)
        return super().send(msg)


async def connect(address: str, timeout: float = DEFAULT_CALL_TIMEOUT) -> GatewayBus:
    # EXTERNAL without a uid of our own: the daemon takes the socket's, which is who we
    # are there. Through an SSH forward that is the ssh user on the gateway, whose uid
    # need not be ours here (dbus-fast would claim os.getuid() and be rejected).
    bus = GatewayBus(
        bus_address=address, bus_type=BusType.SESSION, auth=AuthExternal(UID_NOT_SPECIFIED)
    )
    await asyncio.wait_for(bus.connect(), timeout)
    return loss_noted(bus)


async def call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: Sequence[Any] = (),
    timeout: float = DEFAULT_CALL_TIMEOUT,
) -> list[Any]:
    """Call a method and return the reply body; D-Bus errors raise DBusError."""
    msg = Message(
        destination=destination,
        path=path,
        interface=interface,
        member=member,
        signature=signature,
        body=list(body),
    )
    try:
        reply = await asyncio.wait_for(bus.call(msg), timeout)
    except TimeoutError:
        raise DBusError(
            "org.freedesktop.DBus.Error.Timeout",
            f"{destination} did not answer {member} within {timeout:g} s",
        ) from None
    if reply is None:  # the connection was closed (by this side) before the answer
        raise ConnectionError(f"the connection closed before {member} was answered")
    if reply.message_type == MessageType.ERROR:
        raise DBusError._from_message(reply)
    return reply.body


def emit_signal(
    bus: MessageBus, triple: tuple[str, str, str], signature: str, body: Sequence[Any]
) -> None:
    """Emit a signal from an arbitrary path, as AGILE does (e.g. /org/eclipse/agail/NewDevice)."""
    interface, path, member = triple
    bus.send(Message.new_signal(path, interface, member, signature, list(body)))


def error_text(exc: Exception) -> str:
    """What to tell a person of a failed call: the D-Bus error's own text."""
    return exc.text if isinstance(exc, DBusError) else str(exc)


def match_rule(**keys: str) -> str:
    return ",".join(f"{k}='{v}'" for k, v in keys.items())


async def add_match(bus: MessageBus, rule: str) -> None:
    await call(bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "AddMatch", "s", [rule])


async def list_names(bus: MessageBus) -> list[str]:
    (names,) = await call(bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "ListNames")
    return names


async def name_has_owner(bus: MessageBus, name: str) -> bool:
    (owned,) = await call(bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "NameHasOwner", "s", [name])
    return bool(owned)


def on_signal(
    bus: MessageBus,
    interface: str,
    member: str,
    callback: Callable[[Message], None],
    path: str | None = None,
    *,
    sender: str,
) -> None:
    """Dispatch matching signals to `callback`; a callback error is logged, never fatal.
    Only signals from the current owner of `sender` count (a name, or a namespace
    ending in "."; `listen` keeps the owners known): anybody on the bus can send any
    signal, and a forged FoundNewDeviceSignal or WriteStatus must not be believed."""
    owners = bus.owners if isinstance(bus, GatewayBus) else None
    forged: set[str] = set()

    def handler(msg: Message) -> None:
        if (
            msg.message_type != MessageType.SIGNAL
            or msg.interface != interface
            or msg.member != member
            or (path is not None and msg.path != path)
        ):
            return
        if sender == DBUS_NAME:
            trusted = msg.sender == DBUS_NAME  # the daemon's own: nobody else can say so
        else:
            trusted = owners is not None and owners.owns(msg.sender or "", sender)
        if not trusted:
            if msg.sender not in forged and len(forged) < 100:
                forged.add(msg.sender or "")
                log.warning(
                    "%s.%s from %s ignored: not the owner of %s",
                    interface,
                    member,
                    msg.sender,
                    sender,
                )
            return
        try:
            callback(msg)
        except Exception:
            log.exception("bad %s.%s signal from %s skipped", interface, member, msg.sender)

    bus.add_message_handler(handler)


class NameOwners:
    """The current owner of each name (or namespace: a prefix ending in ".") whose
    signals a connection takes, kept from NameOwnerChanged."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.owner: dict[str, str] = {}
        self.watched: set[str] = set()

    def owns(self, unique: str, name: str) -> bool:
        if name.endswith("."):
            return any(n.startswith(name) and o == unique for n, o in self.owner.items())
        return bool(unique) and self.owner.get(name) == unique

    def _changed(self, name: str, _old: str, new: str) -> None:
        if any(name == w or (w.endswith(".") and name.startswith(w)) for w in self.watched):
            if new:
                self.owner[name] = new
            else:
                self.owner.pop(name, None)

    async def watch(self, name: str) -> None:
        if name in self.watched or name == DBUS_NAME:
            return
        if not self.watched:
            on_signal(
                self.bus,
                DBUS_NAME,
                "NameOwnerChanged",
                lambda m: self._changed(*m.body),
                sender=DBUS_NAME,
            )
        self.watched.add(name)
        keys = {
            "type": "signal",
            "sender": DBUS_NAME,
            "interface": DBUS_NAME,
            "member": "NameOwnerChanged",
        }
        if name.endswith("."):
            await add_match(self.bus, match_rule(**keys, arg0namespace=name.rstrip(".")))
            names = [n for n in await list_names(self.bus) if n.startswith(name)]
        else:
            await add_match(self.bus, match_rule(**keys, arg0=name))
            names = [name]
        for n in names:
            try:
                (owner,) = await call(
                    self.bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetNameOwner", "s", [n]
                )
            except DBusError:
                continue  # not owned now: NameOwnerChanged says when it is
            self.owner.setdefault(n, owner)


async def listen(
    bus: MessageBus,
    triple: tuple[str, str, str],
    callback: Callable[[Message], None],
    sender: str,
    any_path: bool = False,
) -> None:
    """Take the (interface, path, member) signal from the owner of `sender` only (a name,
    or a namespace ending in "."), from now on."""
    interface, path, member = triple
    if isinstance(bus, GatewayBus):
        await bus.owners.watch(sender)
    on_signal(bus, interface, member, callback, None if any_path else path, sender=sender)
    keys = {"type": "signal", "interface": interface, "member": member}
    if not any_path:
        keys["path"] = path
    await add_match(bus, match_rule(**keys))


async def watch_name_owners(
    bus: MessageBus, callback: Callable[[str, str, str], None], arg0namespace: str | None = None
) -> None:
    """Call `callback(name, old_owner, new_owner)` on NameOwnerChanged."""
    keys = {
        "type": "signal",
        "sender": DBUS_NAME,
        "interface": DBUS_NAME,
        "member": "NameOwnerChanged",
    }
    if arg0namespace:
        keys["arg0namespace"] = arg0namespace
    on_signal(bus, DBUS_NAME, "NameOwnerChanged", lambda m: callback(*m.body), sender=DBUS_NAME)
    await add_match(bus, match_rule(**keys))


# --- serving -------------------------------------------------------------------

_caller: contextvars.ContextVar[str] = contextvars.ContextVar("agile_caller", default="")


def caller() -> str:
    """Unique bus name of the client whose method call is being handled."""
    return _caller.get()


class Exports:
    """Exports service objects and guards their method signatures.

    dbus-fast answers a call whose signature does not match with UnknownMethod;
    AGILE clients and the contract expect InvalidArgs for malformed arguments,
    so calls to a known method with the wrong signature are answered here.  The
    same hook records the caller for reference-counted subscriptions: dbus-fast
    runs message handlers synchronously before dispatch, and the method's task
    copies the context it was created in.
    """

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self._methods: dict[str, dict[str, dict[str, set[str]]]] = {}
        bus.add_message_handler(self._guard)

    def export(self, path: str, iface: ServiceInterface) -> None:
        methods: dict[str, set[str]] = {}
        for method in iface.introspect().methods:
            methods.setdefault(method.name, set()).add(method.in_signature)
        self._methods.setdefault(path, {})[iface.name] = methods
        self.bus.export(path, iface)

    def unexport(self, path: str, iface: ServiceInterface | None = None) -> None:
        if iface is None:
            self._methods.pop(path, None)
        else:
            self._methods.get(path, {}).pop(iface.name, None)
        self.bus.unexport(path, iface)

    def _guard(self, msg: Message) -> Message | None:
        if msg.message_type != MessageType.METHOD_CALL:
            return None
        _caller.set(msg.sender or "")
        ifaces = self._methods.get(msg.path or "")  # a method call always has one
        if not ifaces:
            if msg.interface in ANY_PATH_INTERFACES:
                return None  # introspecting the tree, pinging the peer
            # dbus-fast would say "method ... could not be found", as if the object existed.
            return Message.new_error(msg, UNKNOWN_OBJECT_ERROR, f"no object at {msg.path}")
        tables = (
            [ifaces[msg.interface]]
            if msg.interface in ifaces
            else ([] if msg.interface else list(ifaces.values()))
        )
        signatures: set[str] = set()
        for table in tables:
            signatures |= table.get(msg.member or "", set())
        if signatures and msg.signature not in signatures:
            expected = " or ".join(f"({s})" for s in sorted(signatures))
            return Message.new_error(
                msg, INVALID_ARGS_ERROR, f"{msg.member} takes {expected}, not ({msg.signature})"
            )
        return None


async def request_names(bus: MessageBus, names: Iterable[str]) -> None:
    for name in names:
        reply = await bus.request_name(name, NameFlag.DO_NOT_QUEUE)
        if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
            raise RuntimeError(
                f"cannot own {name} on the bus ({reply.name}): "
                "another instance is running, or the bus policy forbids it"
            )
