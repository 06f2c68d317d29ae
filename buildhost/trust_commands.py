"""`agile-gateway trust init|refresh|rotate-release|show`: the build host's keys and the
signed metadata in the registry (buildhost.trust). A gateway's `trust provision` is the
update service's (services.updater.cli)."""

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from buildhost.trust import DEFAULT_FOLDER, EXPIRY_DAYS, TrustError, TrustFolder


def add_commands(group: Callable[[str, str], Any]) -> None:
    trust_sub = group("trust", "signed releases: keys, metadata, a gateway's trusted root")
    for name, text in (
        ("init", "make the keys and the first metadata; prints the root to provision"),
        ("refresh", "sign a new snapshot and timestamp (as often as they expire)"),
        ("rotate-release", "a new release key signed in by the root keys; the old one revoked"),
        ("show", "the keys, versions and expiry of the metadata"),
    ):
        cmd = trust_sub.add_parser(name, help=text)
        cmd.add_argument("--trust", help=f"the trust folder (default {DEFAULT_FOLDER})")
        if name != "show":
            cmd.add_argument(
                "--registry",
                help="host:port: upload the metadata there (init: optional)",
                required=name != "init",
            )
        if name == "init":
            cmd.add_argument("--root-keys", type=int, default=1, help="how many root keys")
            cmd.add_argument(
                "--threshold", type=int, default=1, help="how many of them sign a new root"
            )
        if name == "refresh":
            cmd.add_argument(
                "--days",
                type=float,
                default=EXPIRY_DAYS["timestamp"],
                help="the timestamp's expiry (default 1 day; a gateway refuses all after it)",
            )
        cmd.set_defaults(func=cmd_trust)


def cmd_trust(args: argparse.Namespace) -> int:
    from services.images.registry import RegistryError

    trust = TrustFolder(Path(args.trust) if args.trust else DEFAULT_FOLDER)
    try:
        if args.trust_command == "init":
            root = trust.init(args.root_keys, args.threshold)
            print(f"root keys: {trust.root_keys} (keep them offline)")
            print(f"provision gateways with {root}: agile-gateway trust provision FILE")
        elif args.trust_command == "refresh":
            trust.snapshot({"timestamp": args.days})
        elif args.trust_command == "rotate-release":
            print(f"release key {trust.rotate_release()[:12]}: the old one is revoked")
        else:
            print(describe(trust))
        if getattr(args, "registry", None):
            print(f"uploaded {trust.upload(args.registry):,} bytes of metadata to {args.registry}")
    except (TrustError, RegistryError, OSError) as exc:
        print(f"agile-gateway trust {args.trust_command}: {exc}", file=sys.stderr)
        return 1
    return 0


def describe(trust: TrustFolder) -> str:
    now = datetime.now(UTC)
    lines = []
    root = trust.load("root").signed
    for role in ("root", "targets", "snapshot", "timestamp"):
        md = trust.load(role).signed
        left = (md.expires - now).total_seconds() / 86400
        keys = root.roles[role]
        lines.append(
            f"{role:<10} version {md.version:<4} expires {md.expires:%Y-%m-%d %H:%M} UTC "
            f"({'EXPIRED' if left < 0 else f'{left:.1f} days'}); keys "
            f"{', '.join(k[:12] for k in keys.keyids)} (threshold {keys.threshold})"
        )
    for role in trust.roles():
        md = trust.load(role).signed
        lines.append(f"{role:<10} version {md.version:<4} expires {md.expires:%Y-%m-%d %H:%M} UTC")
        for path, target in sorted(md.targets.items()):
            custom = target.unrecognized_fields.get("custom", {})
            if "release" in custom:
                lines.append(
                    f"  {path}: release {custom['release']}, image {custom['image'][7:19]}"
                    + (f", version {custom['version']}" if custom.get("version") else "")
                )
    return "\n".join(lines)
