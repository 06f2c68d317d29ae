"""`agile-gateway fleet status|rollout`: agile-tui's Fleet section for scripts. The
gateways are agile-tui's: its config file's [gateways.NAME] tables and --gateway."""

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.gateways import Gateway, GatewayError, fleet
from fleet.status import COLUMNS, POLL_TIMEOUT_S, Fleet, Member, row


def add_commands(group: Callable[[str, str], Any]) -> None:
    fleet_sub = group("fleet", "many gateways over SSH: status, staged rollouts")
    for name, text in (
        ("status", "each gateway once: reachable, services, devices, versions, updates"),
        ("rollout", "one service's new image: a canary, then waves, stopped by a failure"),
    ):
        cmd = fleet_sub.add_parser(name, help=text)
        cmd.add_argument("--config", help="agile-tui's config file (default: its own)")
        cmd.add_argument(
            "--gateway", action="append", default=[], metavar="USER@HOST[:PORT]", help="repeatable"
        )
        cmd.add_argument(
            "--timeout", type=float, default=POLL_TIMEOUT_S, help="s a gateway has to answer"
        )
        if name == "status":
            cmd.set_defaults(func=cmd_status)
            continue
        cmd.add_argument("service", help="the service image, e.g. storage")
        cmd.add_argument("--registry", default="", help="host:port (default: each stack's)")
        cmd.add_argument("--wave", type=int, default=1, help="gateways a wave (after the canary)")
        cmd.add_argument("--canary", default="", help="the gateway first (default: the first)")
        cmd.add_argument(
            "--window", type=float, default=0.0, help="s to be healthy (default: the gateway's)"
        )
        cmd.set_defaults(func=cmd_rollout)


def gateways_of(args: argparse.Namespace) -> list[Gateway]:
    from fleet.config import ConfigError, load_config  # no textual: the settings alone

    try:
        config = load_config(Path(args.config) if args.config else None)
        gateways = fleet(config.gateways, str(config.path), args.gateway)
    except (ConfigError, GatewayError) as exc:
        raise SystemExit(f"agile-gateway fleet: {exc}") from None
    if not gateways:
        raise SystemExit(
            "agile-gateway fleet: no gateways: give --gateway USER@HOST, or [gateways.NAME] "
            "tables in agile-tui's config file"
        )
    return gateways


def table(rows: list[tuple[str, ...]], columns: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [columns, *rows]
    )


def cmd_status(args: argparse.Namespace) -> int:
    async def poll() -> list:
        the_fleet = Fleet(gateways_of(args), timeout_s=args.timeout)
        try:
            return await the_fleet.poll_all()
        finally:
            await the_fleet.stop()

    statuses = asyncio.run(poll())
    now = time.time()
    print(table([row(s, now) for s in statuses], COLUMNS))
    for s in statuses:  # the whole of what the table says in a few words
        if s.problem or s.update_problem:
            print(f"{s.name}: {s.problem or 'updates: ' + s.update_problem}")
    return 0 if all(s.reachable for s in statuses) else 1


def cmd_rollout(args: argparse.Namespace) -> int:
    from fleet.rollout import STEP_COLUMNS, Rollout, Step, step_row

    members = [Member(g, args.timeout) for g in gateways_of(args)]
    said: dict[str, str] = {}

    def changed(steps: list[Step]) -> None:
        for step in steps:
            if said.get(step.gateway) != step.state:
                said[step.gateway] = step.state
                wave = "canary" if step.wave == 0 else f"wave {step.wave}"
                print(f"{step.gateway} ({wave}): {step.state} {step.message}".rstrip(), flush=True)

    async def run() -> tuple[bool, list[Step]]:
        try:
            rollout = Rollout(
                members, args.service, args.registry, args.wave, args.window, args.canary, changed
            )
        except ValueError as exc:
            raise SystemExit(f"agile-gateway fleet rollout: {exc}") from None
        try:
            return await rollout.run(), list(rollout.steps.values())
        finally:
            await rollout.close()

    ok, steps = asyncio.run(run())
    print(table([step_row(s) for s in steps], STEP_COLUMNS))
    if not ok:
        print(f"agile-gateway fleet rollout {args.service}: stopped", file=sys.stderr)
    return 0 if ok else 1
