"""The fleet's gateways: `[gateways.NAME]` tables of agile-tui's config file, or
`--gateway user@host[:port]` on the command line."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.errors import ConfigurationError

# The gateway user's own state folder (agile-gateway's default), relative to its home.
REMOTE_STATE_DIR = ".local/state/agile-gateway"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_KEYS = {"ssh", "port", "identity", "known_hosts", "state_dir", "engine"}


class GatewayError(ConfigurationError):
    """A gateway's settings are wrong; the message says which and how."""


@dataclass(frozen=True)
class Gateway:
    name: str
    ssh: str  # user@host, as ssh takes it
    port: int = 22
    identity: Path | None = None  # ssh's own choice when None
    known_hosts: Path | None = None  # ssh's own files when None
    state_dir: str = REMOTE_STATE_DIR  # on the gateway; relative: to the user's home
    engine: str = ""  # the gateway's DOCKER_HOST; its default engine when ""


def from_table(name: str, table: Any, where: str = "config") -> Gateway:
    """`[gateways.NAME]`, checked: every mistake is said with its place."""
    at = f"{where}: [gateways.{name}]"
    if not _NAME.match(name):
        raise GatewayError(f"{at}: a name is letters, digits, '.', '_' and '-'")
    if not isinstance(table, dict):
        raise GatewayError(f"{at} must be a table")
    if unknown := set(table) - _KEYS:
        raise GatewayError(f"{at}: unknown settings {', '.join(sorted(unknown))}")
    ssh = table.get("ssh")
    if not isinstance(ssh, str) or not ssh or ssh.startswith("-") or " " in ssh:
        raise GatewayError(f'{at}: ssh = "user@host" is required')
    port = table.get("port", 22)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise GatewayError(f"{at}: port must be a number from 1 to 65535")
    paths = {}
    for key in ("identity", "known_hosts"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise GatewayError(f"{at}: {key} must be a file's path")
        paths[key] = Path(value).expanduser() if value else None
    for key in ("state_dir", "engine"):
        if not isinstance(table.get(key, ""), str):
            raise GatewayError(f"{at}: {key} must be a string")
    return Gateway(
        name,
        ssh,
        port,
        paths["identity"],
        paths["known_hosts"],
        table.get("state_dir") or REMOTE_STATE_DIR,
        table.get("engine", ""),
    )


def fleet(tables: dict[str, Any], where: str, arguments: list[str]) -> list[Gateway]:
    """The config file's `[gateways.NAME]` tables (`where`: the file), then the command
    line's gateways; one name once."""
    configured = [from_table(name, table, where) for name, table in tables.items()]
    gateways = [*configured, *(from_argument(a) for a in arguments)]
    names = [g.name for g in gateways]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise GatewayError(f"gateway names given twice: {', '.join(twice)}")
    return gateways


def from_argument(target: str) -> Gateway:
    """`user@host` or `user@host:port` (`--gateway`), named after its host[:port]."""
    ssh, _, port = target.rpartition(":") if target.count(":") == 1 else (target, "", "")
    if not port.isdigit() and port:
        raise GatewayError(f"--gateway {target}: the port must be a number")
    host = ssh.rpartition("@")[2]
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{host}-{port}" if port else host)
    table: dict[str, Any] = {"ssh": ssh}
    if port:
        table["port"] = int(port)
    return from_table(name, table, "--gateway")
