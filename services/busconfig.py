"""The gateway bus: a private dbus-daemon on a unix socket in the state folder."""

import contextlib
import getpass
import grp
import logging
import os
import pwd
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

from services.access import group_id, role_groups
from services.catalog import CATALOG
from services.contract import PROTOCOL_NAME_PREFIX, RUNTIME_NAME, Role
from services.contract_api import ROLES, SERVICE_CALLS, SIGNAL_SENDERS
from services.lifetime import dies_with_parent

log = logging.getLogger(__name__)

SOCKET_NAME = "bus.sock"
CONFIG_NAME = "bus.conf"
# Beside the stack's socket: the host's role groups' policy, and its bus's users and
# groups (the services' own and the groups' members), written by `up --containers`.
ROLES_CONF = "bus-roles.conf"
ACCOUNTS_DIR = "accounts"
CONTAINER_GID = 10001  # the `agile` group every service's user is in

# Which names each service may own. A protocol adapter owns one name under
# org.eclipse.agail.protocol.; third-party adapters fit the same rule.
SERVICE_NAMES: dict[str, tuple[str, ...]] = {
    s.name: s.bus_names
    for s in CATALOG.values()
    if s.bus_names and not any(n.startswith(PROTOCOL_NAME_PREFIX) for n in s.bus_names)
} | {"supervisor": (RUNTIME_NAME,)}  # the native runtime's control object


def account(service: str) -> str:
    """The user a service's container runs as, by name (the bus policy names users)."""
    return "root" if CATALOG[service].uid == 0 else f"agile-{service}"


def container_users() -> dict[str, str]:
    """Each service of the container stack on the gateway bus: its user."""
    return {s.name: account(s.name) for s in CATALOG.values() if s.bus_names}


def container_accounts() -> str:
    """The bus image's /etc/agile/accounts ("name uid" lines): dbus-daemon resolves
    every connecting uid to a user, and rejects one it does not know."""
    return "".join(f"{account(s.name)} {s.uid}\n" for s in CATALOG.values() if s.uid)


def _owns(names: Sequence[str]) -> list[str]:
    return [f"<allow own={quoteattr(n)}/>" for n in names]


def _calls(allowed: Iterable[tuple[str, str]]) -> list[str]:
    return [
        f'<allow send_type="method_call" send_interface={quoteattr(i)} send_member={quoteattr(m)}/>'
        for i, m in sorted(allowed)
    ]


def _signals(ifaces: Iterable[str]) -> list[str]:
    return [f'<allow send_type="signal" send_interface={quoteattr(i)}/>' for i in sorted(ifaces)]


def calls_of(role: Role, service: str = "") -> set[tuple[str, str]]:
    """Every (interface, member) a role may call; a service's own identity adds its own."""
    allowed = {
        (i, m) for i, members in ROLES.items() for m, need in members.items() if need <= role
    }
    return allowed | set(SERVICE_CALLS.get(service, ()))


def _block(attribute: str, value: str, rules: list[str]) -> str:
    inner = "\n    ".join(rules)
    return f"  <policy {attribute}={quoteattr(value)}>\n    {inner}\n  </policy>"


def _gateway_defaults() -> list[str]:
    """Nobody calls a gateway method or sends a gateway signal unless a rule after this
    one says so: the roles table, per group and user."""
    rules = [
        f'<deny send_type="method_call" send_destination={quoteattr(n)}/>'
        for names in SERVICE_NAMES.values()
        for n in names
    ]
    rules.append(
        '<deny send_type="method_call" send_destination_prefix='
        f"{quoteattr(PROTOCOL_NAME_PREFIX.rstrip('.'))}/>"
    )
    rules += [f'<deny send_type="signal" send_interface={quoteattr(i)}/>' for i in sorted(ROLES)]
    rules += [  # introspection, ping, reading properties: open to whoever may connect
        '<allow send_type="method_call" send_interface="org.freedesktop.DBus.Introspectable"/>',
        '<allow send_type="method_call" send_interface="org.freedesktop.DBus.Peer"/>',
        *[
            '<allow send_type="method_call" send_interface="org.freedesktop.DBus.Properties" '
            f'send_member="{m}"/>'
            for m in ("Get", "GetAll")
        ],
    ]
    return rules + _calls(calls_of(Role.NONE))


def render_config(
    socket_path: Path,
    service_users: Mapping[str, str] | None = None,
    names: Sequence[str] | None = None,
    gateway_user: str | None = None,
    groups: Mapping[Role, str] | None = None,
) -> str:
    """dbus-daemon configuration for the gateway bus.

    The gateway's methods and signals follow the roles table (services.contract_api):
    a default that denies every gateway method and signal, then per role group
    (`groups`: unix group names) the methods of that role and those below it.

    Without `service_users` (native runtime: every service runs as the gateway's user)
    only `gateway_user`, root and the role groups may connect; the gateway's user may do
    everything and own exactly the gateway's names (the policy cannot tell its services
    apart, nor them from an agile-tui of that user). With it (containers: one user per
    service) each service's user may own only its own service's names, send only its
    own signals and call what a viewer may plus what it needs (SERVICE_CALLS); root
    may call everything and owns only the update service's name (that service runs as
    root); the host's role groups come from a file `up` writes beside the socket
    (render_roles), included. No rule lets anybody eavesdrop; monitoring
    (BecomeMonitor) is open only to root and the daemon's own user, by dbus-daemon's
    rule: in the stack `agile`, the monitor role, as which no service runs. `names`
    makes a bus of another kind altogether: owning those names is its only rule (the
    virtual system bus owns only org.bluez).
    """
    admission = ['<allow user="*"/>']
    own_rules: list[str] = []
    gateway_rules: list[str] = []
    blocks = []
    if names is not None:
        own_rules = _owns(names)
    else:
        gateway_rules = _gateway_defaults()
        for role, group in (groups or {}).items():
            blocks.append(_block("group", group, _calls(calls_of(role))))
        if service_users is None:
            user = gateway_user or getpass.getuser()
            admission = [f"<allow user={quoteattr(u)}/>" for u in sorted({user, "root"})]
            admission += [f"<allow group={quoteattr(g)}/>" for g in (groups or {}).values()]
            owned = [n for names_ in SERVICE_NAMES.values() for n in names_]
            prefix = quoteattr(PROTOCOL_NAME_PREFIX.rstrip("."))
            rules = [*_owns(owned), f"<allow own_prefix={prefix}/>"]
            rules += _calls(calls_of(Role.ADMIN)) + _signals(ROLES)
            blocks.append(_block("user", user, rules))
            if user != "root":
                blocks.append(_block("user", "root", _calls(calls_of(Role.ADMIN))))
        else:
            for service, user in service_users.items():
                rules = _owns(CATALOG[service].bus_names) + _calls(calls_of(Role.VIEWER, service))
                rules += _signals(i for i, senders in SIGNAL_SENDERS.items() if service in senders)
                blocks.append(_block("user", user, rules))
            blocks.append(_block("user", "root", _calls(calls_of(Role.ADMIN))))
            # The host's role groups are known only where the stack comes up.
            roles = socket_path.parent / ROLES_CONF
            blocks.append(f'  <include ignore_missing="yes">{roles}</include>')
    rules_text = "\n    ".join(
        [
            *admission,
            '<allow send_destination="*"/>',
            '<allow receive_sender="*"/>',
            '<deny own="*"/>',
            *own_rules,
            *gateway_rules,
        ]
    )
    user_policies = "\n".join(blocks)
    return f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>agile-gateway</type>
  <listen>unix:path={socket_path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    {rules_text}
  </policy>
{user_policies}
  <limit name="max_incoming_bytes">16777216</limit>
  <limit name="max_message_size">4194304</limit>
</busconfig>
"""


def render_roles(groups: Mapping[Role, str]) -> str:
    """The stack bus's included policy for the host's role groups: their members may
    connect, and call what their role may."""
    admission = "\n    ".join(f"<allow group={quoteattr(g)}/>" for g in groups.values())
    blocks = "\n".join(_block("group", g, _calls(calls_of(r))) for r, g in groups.items())
    return f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy context="default">
    {admission}
  </policy>
{blocks}
</busconfig>
"""


def container_identities(groups: Mapping[Role, str]) -> tuple[str, str]:
    """The stack bus's /etc/passwd and /etc/group: its own users (root, `agile`, each
    service's) and the host's role groups with their members, by the host's ids."""
    nologin = "::/nonexistent:/usr/sbin/nologin"
    users = {"root": (0, 0), "agile": (CONTAINER_GID, CONTAINER_GID)}
    users |= {account(s.name): (s.uid, CONTAINER_GID) for s in CATALOG.values() if s.uid}
    group_lines = ["root:x:0:", f"agile:x:{CONTAINER_GID}:"]
    for group in dict.fromkeys(groups.values()):
        entry = grp.getgrnam(group)
        members = set(entry.gr_mem) | {
            p.pw_name for p in pwd.getpwall() if p.pw_gid == entry.gr_gid
        }
        for name in sorted(members):
            with contextlib.suppress(KeyError):
                person = pwd.getpwnam(name)
                users.setdefault(name, (person.pw_uid, person.pw_gid))
        group_lines.append(f"{group}:x:{entry.gr_gid}:{','.join(sorted(members))}")
    passwd = "".join(f"{n}:x:{uid}:{gid}{nologin}\n" for n, (uid, gid) in users.items())
    return passwd, "\n".join(group_lines) + "\n"


def existing_groups(groups: Mapping[Role, str]) -> dict[Role, str]:
    """The role groups this host has (dbus-daemon ignores a rule naming another, noisily)."""
    found = {}
    for role, group in groups.items():
        if group_id(group) is None:
            log.info("no group %s here: only its members could have the %s role", group, role)
        else:
            found[role] = group
    return found


def start_bus_daemon(
    folder: Path,
    service_users: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    names: Sequence[str] | None = None,
    with_parent: bool = False,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start dbus-daemon on `folder/bus.sock`; return the process and its address.
    `with_parent`: it dies with this process (see services.lifetime). The gateway bus's
    role groups come from the environment (services.access.role_groups)."""
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / SOCKET_NAME
    socket_path.unlink(missing_ok=True)  # a stale socket from a killed daemon
    config = folder / CONFIG_NAME
    groups = existing_groups(role_groups()) if names is None else None
    config.write_text(render_config(socket_path, service_users, names, groups=groups))
    read_fd, write_fd = os.pipe()
    log_out = open(log_file, "ab") if log_file else None  # noqa: SIM115
    err = log_out if log_out is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            [
                "dbus-daemon",
                "--nofork",
                "--nopidfile",
                f"--config-file={config}",
                f"--print-address={write_fd}",
            ],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
            preexec_fn=dies_with_parent() if with_parent else None,
        )
    finally:
        os.close(write_fd)
        if log_out is not None:
            log_out.close()
    with os.fdopen(read_fd) as pipe:
        address = pipe.readline().strip()
    if not address:
        proc.wait(5)
        raise RuntimeError(f"dbus-daemon did not start (exit {proc.returncode}); see {log_file}")
    return proc, address
