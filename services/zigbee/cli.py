"""`agile-gateway zigbee backups|backup|restore`: the ZigBee network's backups, through the
running ZigBee service on the gateway bus (admins alone read or restore one: a backup
holds the network key)."""

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.bus import BusNotFound, default_state_dir, resolve_bus_address

RESTORE_TIMEOUT_S = 120.0  # the radio closes and opens again on the restored network


def add_commands(group: Callable[[str, str], Any]) -> None:
    sub = group("zigbee", "the ZigBee network")
    listing = sub.add_parser("backups", help="the network backups the gateway keeps")
    backup = sub.add_parser("backup", help="back the network up now and write the backup")
    backup.add_argument("file", nargs="?", help="where to write it (default: standard output)")
    restore = sub.add_parser(
        "restore", help="put a backup's network onto the radio (open coordinator backup JSON)"
    )
    restore.add_argument("file")
    for parser in (listing, backup, restore):
        parser.add_argument("--bus", help="the gateway bus (default: the state folder's)")
        parser.add_argument("--state-dir")
        parser.set_defaults(func=cmd_zigbee)


def cmd_zigbee(args: argparse.Namespace) -> int:
    from dbus_fast import DBusError

    from services.bus import connect
    from services.zigbee.backups import MAX_BACKUP_BYTES
    from services.zigbee.calls import zigbee_call

    command = f"agile-gateway zigbee {args.zigbee_command}"
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    try:
        address = resolve_bus_address(args.bus, state_dir)
        text = ""
        if args.zigbee_command == "restore":
            with open(args.file, "rb") as f:
                data = f.read(MAX_BACKUP_BYTES + 1)
            if len(data) > MAX_BACKUP_BYTES:
                raise ValueError(f"{args.file} is over {MAX_BACKUP_BYTES} bytes: not a backup")
            text = data.decode()
    except (BusNotFound, OSError, ValueError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2

    async def zigbee(member: str, signature: str = "", *body: Any, timeout: float = 30) -> Any:
        bus = await connect(address)
        try:
            return await zigbee_call(bus, member, signature, *body, timeout=timeout)
        finally:
            bus.disconnect()

    try:
        if args.zigbee_command == "backups":
            for time_ms, name, devices in asyncio.run(zigbee("Backups")):
                print(f"{_when(time_ms)}  {devices:3d} devices  {name}")
        elif args.zigbee_command == "backup":
            _, name, devices = asyncio.run(zigbee("TakeBackup"))
            document = asyncio.run(zigbee("ExportBackup", "s", name))
            _write_private(args.file, document)
            print(f"backed up: {name}, {devices} devices", file=sys.stderr)
        else:
            _, before, _ = asyncio.run(zigbee("Restore", "s", text, timeout=RESTORE_TIMEOUT_S))
            print(f"restored; the network it replaced is kept as {before}", file=sys.stderr)
    except DBusError as exc:
        print(f"{command}: {exc.text}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as exc:
        print(f"{command}: bus {address}: {exc}", file=sys.stderr)
        return 2
    return 0


def _when(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _write_private(path: str | None, document: str) -> None:
    """The backup holds the network key: a file of the user's alone (a new file, put in
    place of any one there, whatever its mode)."""
    from services.atomicjson import write_atomic

    if path is None:
        sys.stdout.write(document + "\n")
        return
    write_atomic(Path(path), document.encode(), mode=0o600)
