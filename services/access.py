"""Who may do what: each service checks every call's caller against the roles table
(services.contract_api) before acting, as systemd, NetworkManager and BlueZ check theirs
(the bus policy checks first; this is the second check, and the one that knows the
service's own identities and the arguments). Operator and admin calls go to the audit
log with their outcome.

A caller's credentials come from the bus daemon (GetConnectionCredentials: the uid and
the process's groups, which the kernel vouches for), asked once per connection. Until
they are known, that caller's calls wait, in order.
"""

import asyncio
import contextvars
import grp
import logging
import os
import pwd
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dbus_fast import DBusError, Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface
from dbus_fast.service import method as dbus_method

from services import contract as c
from services.audit import AuditLog, audit_folder
from services.bus import DBUS_NAME, DBUS_PATH, Exports, GatewayBus, call
from services.contract import Role
from services.contract_api import ROLES, SERVICE_CALLS

log = logging.getLogger(__name__)

ROLE_GROUPS_ENV = "AGILE_ROLE_GROUPS"  # viewer=GROUP,operator=GROUP,admin=GROUP
DEFAULT_GROUPS = {
    Role.VIEWER: "agile-viewer",
    Role.OPERATOR: "agile-operator",
    Role.ADMIN: "agile-admin",
}
KNOWN_CALLERS = 1024  # connections whose credentials are kept (unique names never return)
ACTING_MAX = 1024  # audited calls waiting for their answer
WAITING_MAX = 256  # calls of one new connection held until its credentials are known

_current: contextvars.ContextVar[c.CallerInfo | None] = contextvars.ContextVar(
    "agile_caller_info", default=None
)


def role_groups(text: str | None = None) -> dict[Role, str]:
    """`viewer=agile-viewer,operator=...`: which unix group gives each role (a name or a
    gid); the defaults for roles not named."""
    groups = dict(DEFAULT_GROUPS)
    text = os.environ.get(ROLE_GROUPS_ENV, "") if text is None else text
    for item in filter(None, (x.strip() for x in text.split(","))):
        role, sep, group = item.partition("=")
        try:
            named = Role.named(role.strip())
        except KeyError:
            named = Role.NONE
        if not sep or not group.strip() or named == Role.NONE:
            raise ValueError(
                f"{ROLE_GROUPS_ENV}: {item!r} is not ROLE=GROUP (roles: viewer, operator, admin)"
            )
        groups[named] = group.strip()
    return groups


def group_id(group: str) -> int | None:
    """A group name's gid here (a number is one already); None if there is no such group."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def resolved_groups(groups: Mapping[Role, str]) -> str:
    """The same setting with gids: what containers get, which do not know the host's
    group names."""
    parts = []
    for role, group in groups.items():
        gid = group_id(group)
        if gid is not None:
            parts.append(f"{role}={gid}")
    return ",".join(parts)


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


@dataclass(frozen=True)
class AccessPolicy:
    """How credentials map to roles on this gateway."""

    admin_uids: frozenset[int]
    group_roles: Mapping[int, Role]  # gid -> role
    service_uids: Mapping[int, str]  # uid -> service (the container stack's)

    @classmethod
    def from_environment(cls) -> "AccessPolicy":
        from services.catalog import CATALOG

        admins = {0, os.getuid()}  # root, and the user the gateway runs as
        group_roles: dict[int, Role] = {}
        for role, group in role_groups().items():
            gid = group_id(group)
            if gid is not None:
                group_roles[gid] = max(role, group_roles.get(gid, Role.NONE))
        services = {s.uid: s.name for s in CATALOG.values() if s.uid and s.uid not in admins}
        return cls(frozenset(admins), group_roles, services)

    def caller(self, uid: int, gids: list[int], pid: int = 0) -> c.CallerInfo:
        if uid in self.admin_uids:
            service = native_service(pid) if uid == os.getuid() else ""
            return c.CallerInfo(user_name(uid), uid, Role.ADMIN, service)
        if uid in self.service_uids:
            return c.CallerInfo(user_name(uid), uid, Role.VIEWER, self.service_uids[uid])
        role = max((self.group_roles.get(g, Role.NONE) for g in gids), default=Role.NONE)
        return c.CallerInfo(user_name(uid), uid, role)


def native_service(pid: int) -> str:
    """The native runtime's service a process of our own user is (`agile-gateway service
    NAME`), by its command line; "" for any other. It tells a service's own calls (a
    follow, a replay) from a person's in the audit log: one user runs both there."""
    from services.catalog import CATALOG

    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return ""
    for i, arg in enumerate(args[:-2]):
        if arg.endswith(("services.runtime.cli", "agile-gateway")) and args[i + 1] == "service":
            return args[i + 2] if args[i + 2] in CATALOG else ""
    return ""


def allows(who: c.CallerInfo, iface: str, member: str, need: Role) -> bool:
    return who.role >= need or (iface, member) in SERVICE_CALLS.get(who.service, ())


def needed(iface: str | None, member: str) -> Role | None:
    """The role a call needs; None for what is not the gateway's (introspection, ping)."""
    if iface is not None:
        return ROLES.get(iface, {}).get(member)
    # No interface: dbus-fast runs the first method of that name; ask the most any has.
    return max((m[member] for m in ROLES.values() if member in m), default=None)


def current_caller() -> c.CallerInfo | None:
    """Who made the call being handled."""
    return _current.get()


def require(role: Role, what: str) -> None:
    """Inside a method: refuse what needs more than the call itself (a Batch delete)."""
    who = current_caller()
    if who is not None and who.role < role:
        raise c.AccessDenied(denial(who, what, role))


def denial(who: c.CallerInfo, what: str, need: Role) -> str:
    has = f"the {who.role} role" if who.role else "no role"
    return f"{what} needs the {need} role; {who.user} (uid {who.uid}) has {has}"


class Gate:
    """Installed first among a connection's message handlers: every call to one of the
    gateway's interfaces passes it or gets AgileAccessDeniedException."""

    def __init__(
        self,
        bus: MessageBus,
        service: str,
        audit: AuditLog,
        policy: AccessPolicy | None = None,
    ) -> None:
        self.bus = bus
        self.service = service
        self.audit = audit
        self.policy = policy or AccessPolicy.from_environment()
        self._known: OrderedDict[str, c.CallerInfo] = OrderedDict()
        self._waiting: dict[str, list[Message]] = {}
        self._learning: set[asyncio.Task[None]] = set()
        self._acting: dict[tuple[str, int], tuple[float, c.CallerInfo, str, str]] = {}
        bus.add_message_handler(self._check)
        if not isinstance(bus, GatewayBus):
            raise TypeError("the gate needs a bus from services.bus.connect")
        bus.on_send = self._replied

    def _check(self, msg: Message) -> Message | bool | None:
        if msg.message_type != MessageType.METHOD_CALL or not msg.sender:
            return None
        need = needed(msg.interface, msg.member or "")
        if need is None:
            return None
        waiting = self._waiting.get(msg.sender)
        if waiting is not None:
            if len(waiting) >= WAITING_MAX:  # a flood before the bus said who it is
                return Message.new_error(msg, c.ACCESS_DENIED_ERROR, "too many calls at once")
            waiting.append(msg)
            return True
        who = self._known.get(msg.sender)
        if who is None:
            self._waiting[msg.sender] = [msg]
            task = asyncio.ensure_future(self._learn(msg.sender))
            self._learning.add(task)
            task.add_done_callback(self._learning.discard)
            return True
        self._known.move_to_end(msg.sender)
        return self._decide(msg, who, need)

    def _decide(self, msg: Message, who: c.CallerInfo, need: Role) -> Message | None:
        iface = msg.interface or ""
        what = f"{iface.removeprefix(c.PREFIX + '.')}.{msg.member}"
        _current.set(who)
        if allows(who, iface, msg.member or "", need):
            # A person's actions: a service's own calls (following, replaying) would bury them.
            if need >= Role.OPERATOR and not who.service:
                acted = (self.audit.now(), who, what, _arguments(msg))
                if msg.flags & MessageFlag.NO_REPLY_EXPECTED:
                    self._write(acted, "asked (no reply wanted)")
                else:
                    self._acting[(msg.sender or "", msg.serial)] = acted
                    while len(self._acting) > ACTING_MAX:  # answers that never came
                        self._write(self._acting.pop(next(iter(self._acting))), "no answer")
            return None
        text = denial(who, what, need)
        log.warning("refused: %s", text)
        self.audit.write(
            self.audit.now(), who, self.service, what, _arguments(msg), f"refused: needs {need}"
        )
        return Message.new_error(msg, c.ACCESS_DENIED_ERROR, text)

    async def _learn(self, sender: str) -> None:
        who: c.CallerInfo | None = None
        try:
            (creds,) = await call(
                self.bus,
                DBUS_NAME,
                DBUS_PATH,
                DBUS_NAME,
                "GetConnectionCredentials",
                "s",
                [sender],
            )
            uid = creds["UnixUserID"].value
            gids = creds["UnixGroupIDs"].value if "UnixGroupIDs" in creds else []
            pid = creds["ProcessID"].value if "ProcessID" in creds else 0
            who = self.policy.caller(int(uid), list(gids), int(pid))
        except (DBusError, KeyError, EOFError, OSError, TimeoutError) as exc:
            log.warning(
                "the credentials of %s are unknown (%s): its calls are refused", sender, exc
            )
        finally:
            waiting = self._waiting.pop(sender, [])
        if who is None:
            for msg in waiting:
                self.bus.send(
                    Message.new_error(msg, c.ACCESS_DENIED_ERROR, "the bus did not say who you are")
                )
            return
        self._known[sender] = who
        while len(self._known) > KNOWN_CALLERS:
            self._known.popitem(last=False)
        for msg in waiting:
            # Dispatched as if just received (a private method of dbus-fast's bus: the
            # public API has no way to hold a call and let it go later).
            self.bus._process_message(msg)

    def _replied(self, reply: Message) -> None:
        if not self._acting or reply.message_type not in (
            MessageType.METHOD_RETURN,
            MessageType.ERROR,
        ):
            return
        acted = self._acting.pop((reply.destination or "", reply.reply_serial), None)
        if acted is None:
            return
        outcome = "ok"
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            outcome = f"{reply.error_name}: {c.cut(text, 200)}"
        self._write(acted, outcome)

    def _write(self, acted: tuple[float, c.CallerInfo, str, str], outcome: str) -> None:
        when, who, what, arguments = acted
        self.audit.write(when, who, self.service, what, arguments, outcome)


def _arguments(msg: Message) -> str:
    return c.cut(repr(msg.body)[1:-1], 300)


class AccessInterface(ServiceInterface):
    def __init__(self, gate: Gate) -> None:
        super().__init__(c.ACCESS_IFACE)
        self.gate = gate

    @dbus_method()
    def WhoAmI(self) -> c.CallerInfoWire:
        who = current_caller()
        if who is None:
            raise c.NoResult("no caller")
        return who.to_wire()

    @dbus_method()
    def Audit(self, since: c.Double) -> c.AuditListWire:
        return [e.to_wire() for e in self.gate.audit.entries(since)]


def guard(bus: MessageBus, state_dir: Path, service: str) -> Exports:
    """A service's connection, gated: its exports (Access among them) answer only the
    calls a caller's role allows, and what operators and admins did is kept."""
    audit = AuditLog(audit_folder(state_dir) / f"{service}.jsonl")
    gate = Gate(bus, service, audit)
    exports = Exports(bus)
    exports.export(c.ACCESS_PATH, AccessInterface(gate))
    return exports
