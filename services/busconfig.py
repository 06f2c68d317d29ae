"""The gateway bus: a private dbus-daemon on a unix socket in the state folder."""

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import quoteattr

from services.catalog import CATALOG
from services.contract import PROTOCOL_NAME_PREFIX, RUNTIME_NAME
from services.lifetime import dies_with_parent

SOCKET_NAME = "bus.sock"
CONFIG_NAME = "bus.conf"

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


def render_config(
    socket_path: Path,
    service_users: Mapping[str, str] | None = None,
    names: Sequence[str] | None = None,
) -> str:
    """dbus-daemon configuration for the gateway bus.

    Without `service_users` (native runtime: every service and the operator run as one
    user) the policy allows owning exactly the gateway's names; it cannot tell who owns
    which, and BecomeMonitor is open to that user, the daemon's own. With it (containers:
    one user per service) each user may own only its own service's names and everybody
    else (the operator's agile-tui) none. No rule lets anybody eavesdrop; monitoring
    (BecomeMonitor: `busctl monitor`, `dbus-monitor`) is open only to root and the
    daemon's own user, by dbus-daemon's rule: in the stack `agile`, the monitor role, as
    which no service runs. `names` replaces the gateway's names altogether (the virtual
    system bus owns only org.bluez).
    """
    own_rules: list[str] = []
    blocks = []
    if names is not None:
        own_rules = _owns(names)
    elif service_users is None:
        for owned in SERVICE_NAMES.values():
            own_rules += _owns(owned)
        own_rules.append(f"<allow own_prefix={quoteattr(PROTOCOL_NAME_PREFIX.rstrip('.'))}/>")
    else:
        for service, user in service_users.items():
            owned = CATALOG[service].bus_names
            blocks.append(
                f"  <policy user={quoteattr(user)}>\n    "
                + "\n    ".join(_owns(owned))
                + "\n  </policy>"
            )
    own = "\n    ".join(own_rules)
    user_policies = "\n".join(blocks)
    return f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>agile-gateway</type>
  <listen>unix:path={socket_path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <!-- services in containers connect with their own uids -->
    <allow user="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <deny own="*"/>
    {own}
  </policy>
{user_policies}
  <limit name="max_incoming_bytes">16777216</limit>
  <limit name="max_message_size">4194304</limit>
</busconfig>
"""


def start_bus_daemon(
    folder: Path,
    service_users: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    names: Sequence[str] | None = None,
    with_parent: bool = False,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start dbus-daemon on `folder/bus.sock`; return the process and its address.
    `with_parent`: it dies with this process (see services.lifetime)."""
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / SOCKET_NAME
    socket_path.unlink(missing_ok=True)  # a stale socket from a killed daemon
    config = folder / CONFIG_NAME
    config.write_text(render_config(socket_path, service_users, names))
    read_fd, write_fd = os.pipe()
    err = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
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
        if log_file:
            err.close()  # type: ignore[union-attr]
    with os.fdopen(read_fd) as pipe:
        address = pipe.readline().strip()
    if not address:
        proc.wait(5)
        raise RuntimeError(f"dbus-daemon did not start (exit {proc.returncode}); see {log_file}")
    return proc, address
