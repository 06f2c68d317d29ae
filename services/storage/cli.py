"""`agile-gateway storage export`: one stream of the recorded data as CSV or JSON, read
from the state folder (decrypted with the storage key)."""

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.bus import default_state_dir


def add_commands(group: Callable[[str, str], Any]) -> None:
    store_sub = group("storage", "the recorded sensor data")
    export = store_sub.add_parser("export", help="write one stream as CSV or JSON")
    export.add_argument("device", help="device id, e.g. dummyD00000000001")
    export.add_argument("component", help="component id, e.g. temperature")
    export.add_argument("--since", help="epoch ms, ISO 8601 time, or a duration ago (1h, 7d)")
    export.add_argument("--until", help="as --since (default: now)")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.add_argument("--state-dir")
    export.add_argument("--key-file", help="storage key (default STATE/storage/key)")
    export.set_defaults(func=cmd_storage_export)


def cmd_storage_export(args: argparse.Namespace) -> int:
    from services.storage.crypto import StorageKeyError
    from services.storage.export import now_ms, open_store, parse_time_ms, write_records

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    folder = state_dir / "storage"
    now = now_ms()
    try:
        since = parse_time_ms(args.since, now) if args.since else 0
        until = parse_time_ms(args.until, now) if args.until else 2**62
        store = open_store(folder, Path(args.key_file) if args.key_file else folder / "key")
    except (ValueError, StorageKeyError) as exc:
        print(f"agile-gateway storage export: {exc}", file=sys.stderr)
        return 2
    if (args.device, args.component) not in store.streams:
        known = ", ".join(f"{d} {c}" for d, c in sorted(store.streams)) or "none"
        print(
            f"agile-gateway storage export: no stream {args.device} {args.component} in {folder}"
            f" (stored: {known})",
            file=sys.stderr,
        )
        return 1
    try:
        records = store.query(args.device, args.component, since, until)
    except RuntimeError as exc:  # e.g. a tampered segment: said, and nothing written
        print(f"agile-gateway storage export: {exc}", file=sys.stderr)
        return 1
    with (
        open(args.output, "w", newline="", encoding="utf-8")
        if args.output
        else contextlib.nullcontext(sys.stdout)
    ) as out:
        write_records(records, args.format, out)
    print(f"{len(records)} records exported", file=sys.stderr)
    return 0
