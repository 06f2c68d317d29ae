"""`agile-gateway images update|rollback|prune`: operations of the gateway's update
service, followed to their end on the bus (leaving leaves them running there)."""

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.bus import BusNotFound, default_state_dir, resolve_bus_address

if TYPE_CHECKING:
    from services.updater.client import UpdaterClient


def add_commands(group: Callable[[str, str], Any]) -> None:
    images_sub = group("images", "the service images")
    for name, text in (
        ("update", "pull a service's new image, switch to it, roll back if unhealthy"),
        ("rollback", "go back to the image a service ran before its last update"),
        (
            "install-local",
            "switch a service to the image built on this gateway (unsigned: only where "
            "updater:allow-local-builds)",
        ),
        ("prune", "remove the images updates left behind"),
    ):
        cmd = images_sub.add_parser(name, help=text)
        if name != "prune":
            cmd.add_argument("service")
        if name in ("update", "install-local"):
            cmd.add_argument(
                "--window", type=float, default=0.0, help="seconds to be healthy (default 60)"
            )
        if name == "update":
            cmd.add_argument(
                "--registry", help="host:port, e.g. 127.0.0.1:5000 (default: the stack's)"
            )
        cmd.add_argument("--bus", help="the gateway bus (default: the state folder's)")
        cmd.add_argument("--state-dir", help="of the container stack")
        cmd.set_defaults(func=cmd_images_operation)
    provision = group("trust", "signed releases").add_parser(
        "provision", help="trust this root metadata (the build host's trust init made it)"
    )
    provision.add_argument("root", help="the root metadata file, N.root.json")
    provision.add_argument("--state-dir", help="of the container stack")
    provision.set_defaults(func=cmd_trust_provision)


def cmd_trust_provision(args: argparse.Namespace) -> int:
    """The gateway's trusted root: checked to be a root signed by its own threshold of
    keys, then kept in the state folder, where the update service reads it."""
    from services.images.trust import TRUSTED_ROOT, Refused, check_root

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    try:
        data = Path(args.root).read_bytes()
        print(check_root(data))
        target = state_dir / TRUSTED_ROOT
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o644)  # public keys only; the update service (root) reads it
        tmp.replace(target)
    except (OSError, Refused) as exc:
        print(f"agile-gateway trust provision: {exc}", file=sys.stderr)
        return 1
    print(f"trusted: {target}")
    return 0


# How an update service operation's end becomes an exit code.
EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 1, "rolled back": 3}


def cmd_images_operation(args: argparse.Namespace) -> int:
    """update, rollback, prune: operations of the update service on the gateway bus.
    Leaving (Ctrl-C, a dropped session) leaves the operation running there."""
    from dbus_fast import DBusError

    from services.bus import connect, error_text
    from services.updater.client import follow

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    command = args.images_command

    def start(client: "UpdaterClient") -> Awaitable[str]:
        if command == "update":
            return client.update([args.service], args.registry or "", args.window)
        if command == "install-local":
            return client.install_local(args.service, args.window)
        if command == "rollback":
            return client.rollback(args.service)
        return client.prune()

    async def run() -> int:
        bus = await connect(resolve_bus_address(args.bus, state_dir))
        try:
            op = await follow(bus, start, lambda line: print(line, flush=True))
        finally:
            bus.disconnect()
        return EXIT_CODES.get(op.state, 1)

    try:
        return asyncio.run(run())
    except (BusNotFound, OSError, TimeoutError, DBusError) as exc:
        print(f"agile-gateway images {command}: {error_text(exc)}", file=sys.stderr)
        return 1
