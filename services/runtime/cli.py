"""`agile-gateway`: run the gateway, one service, or ask what is running."""

import argparse
import asyncio
import json
import logging
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from services.bus import BusNotFound, default_state_dir, resolve_bus_address

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
COMMANDS = "agile_gateway.commands"  # entry points: add_commands(group) of each package


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"agile-gateway: --option takes KEY=VALUE, not {pair!r}")
        options[key] = value
    return options


def _service_options(items: list[str]) -> dict[str, list[str]]:
    """`up --option SERVICE:KEY=VALUE`s by service; a misspelt one stops here, before
    anything starts."""
    from services.catalog import CATALOG, options_of
    from services.options import OptionError

    options: dict[str, list[str]] = {}
    for item in items:
        service, sep, pair = item.partition(":")
        if not sep:
            raise SystemExit(f"agile-gateway up: --option takes SERVICE:KEY=VALUE, not {item!r}")
        if service not in CATALOG:
            raise SystemExit(
                f"agile-gateway up: --option {item!r}: no service {service!r} "
                f"(services: {', '.join(CATALOG)})"
            )
        options.setdefault(service, []).append(pair)
    try:
        for service, pairs in options.items():
            options_of(service, _options(pairs))
    except OptionError as exc:
        raise SystemExit(f"agile-gateway up: {exc}") from None
    return options


def cmd_up(args: argparse.Namespace) -> int:
    from services.access import role_groups
    from services.catalog import services_for
    from services.private import make_private, private_umask
    from services.runtime.supervisor import Supervisor

    if args.native == args.containers:
        raise SystemExit("agile-gateway up: say which runtime (--native or --containers)")
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    options = _service_options(args.option)
    try:
        role_groups()  # a mistake there is said before anything starts
    except ValueError as exc:
        raise SystemExit(f"agile-gateway up: {exc}") from None
    if args.containers:  # waits for the services' names anyway
        return _up_containers(state_dir, args, options)
    private_umask()
    make_private(state_dir)  # a tree made before (0755/0644) is mended
    if args.wait:
        return _up_detached(state_dir, args)
    supervisor = Supervisor(
        state_dir,
        services_for(args.simulate),
        simulate=args.simulate,
        options=options,
        log_max_bytes=args.log_max_bytes,
        log_backups=args.log_files,
    )

    def announce(ready: bool, elapsed: float) -> None:
        state = "up" if ready else "partly up"
        _say_up(
            args,
            f"gateway {state} in {elapsed:.2f} s; bus {supervisor.address} "
            f"(also in {state_dir / 'bus.address'}); logs in {supervisor.log_dir}",
            state=state,
            elapsed_s=round(elapsed, 3),
            bus=supervisor.address,
            logs=str(supervisor.log_dir),
        )

    return asyncio.run(supervisor.run(on_ready=announce, ready_timeout_s=args.timeout))


def _up_detached(state_dir: Path, args: argparse.Namespace) -> int:
    """`up --wait`: the supervisor goes on in the background (its own session, its log in
    DIR/logs/supervisor.log); this returns once every service owns its names."""
    import os
    import signal
    import subprocess

    from services.busconfig import SOCKET_NAME
    from services.runtime.ready import Readiness, wait_ready
    from services.runtime.supervisor import LOG_DIR

    argv = [a for a in args.argv if a != "--wait"]
    log_file = state_dir.resolve() / LOG_DIR / "supervisor.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    address = f"unix:path={state_dir.resolve() / SOCKET_NAME}"  # where the supervisor puts it
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.runtime.cli", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    async def wait() -> Readiness:
        waiter = asyncio.ensure_future(wait_ready(address, state_dir, args.timeout))
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=0.2)
            if proc.poll() is not None and not waiter.done():
                waiter.cancel()
                raise SystemExit(
                    f"agile-gateway up: the supervisor exited with {proc.returncode}; "
                    f"see {log_file}:\n" + log_file.read_text(errors="replace")[-2000:]
                )
        return waiter.result()

    result = asyncio.run(wait())
    if not result.ready:
        os.kill(proc.pid, signal.SIGTERM)  # half a gateway helps no script: stop it
        proc.wait(30)
        print(
            f"agile-gateway up: not ready within {args.timeout:g} s\n{result.explain(state_dir)}",
            file=sys.stderr,
        )
        return 1
    _say_up(
        args,
        f"gateway up; bus {result.address} (also in {state_dir / 'bus.address'}); "
        f"supervisor pid {proc.pid} (agile-gateway down --native stops it)",
        state="up",
        bus=result.address,
        supervisor_pid=proc.pid,
    )
    return 0


def _up_containers(state_dir: Path, args: argparse.Namespace, options: dict[str, list[str]]) -> int:
    from services.catalog import services_for
    from services.errors import AgileError
    from services.runtime.containers import up, wait_for_names

    names = [n for spec in services_for(args.simulate) for n in spec.bus_names]
    try:
        address = up(state_dir, args.simulate, args.strategy, args.project, args.registry, options)
        elapsed = asyncio.run(wait_for_names(address, names, args.timeout))
    except AgileError as exc:  # the stack's, or the engine's (it does not answer)
        print(f"agile-gateway up: {exc}", file=sys.stderr)
        return 1
    _say_up(
        args,
        f"gateway up in {elapsed:.2f} s; bus {address} (also in {state_dir / 'bus.address'}); "
        f"containers of compose project {args.project} ({args.strategy} images)",
        state="up",
        elapsed_s=round(elapsed, 3),
        bus=address,
        project=args.project,
        strategy=args.strategy,
    )
    return 0


def _say_up(args: argparse.Namespace, text: str, **facts: object) -> None:
    """That the gateway is up: a line for people, or with --json one JSON object (what
    programs starting a gateway read)."""
    print(json.dumps(facts) if args.json else text, flush=True)


def cmd_down(args: argparse.Namespace) -> int:
    from services.errors import AgileError
    from services.runtime.containers import down

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    if args.native == args.containers:
        raise SystemExit("agile-gateway down: say which runtime (--native or --containers)")
    if args.native:
        return _down_native(state_dir)
    try:
        down(state_dir, args.simulate, args.project)
    except AgileError as exc:
        print(f"agile-gateway down: {exc}", file=sys.stderr)
        return 1
    return 0


def _down_native(state_dir: Path) -> int:
    """SIGTERM to the supervisor of runtime.json, once its command line says it is one
    (a stale file must not signal an unrelated process), then wait for it to end."""
    import os
    import signal
    import time

    from services.runtime.supervisor import STATUS_FILE

    try:
        status = json.loads((state_dir / STATUS_FILE).read_text())
        pid = int(status["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        ours = status["state"] == "running" and b"up" in cmdline and b"--native" in cmdline
    except (OSError, ValueError, KeyError, TypeError):
        ours = False
    if not ours:
        print(f"agile-gateway down: no native gateway runs in {state_dir}", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from services.catalog import CATALOG
    from services.options import OptionError
    from services.private import private_umask
    from services.service import ServiceConfig

    spec = CATALOG.get(args.name)
    if spec is None:
        raise SystemExit(
            f"agile-gateway service: no service {args.name!r}; known: {', '.join(CATALOG)}"
        )
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    private_umask()
    address = ""
    if spec.bus_names:  # the virtual BlueZ lives on another bus and needs none
        try:
            address = resolve_bus_address(args.bus, state_dir)
        except BusNotFound as exc:
            raise SystemExit(f"agile-gateway service: {exc}") from None
    # In a container, options come from the environment (compose sets AGILE_OPTIONS).
    pairs = shlex.split(os.environ.get("AGILE_OPTIONS", "")) + args.option
    config = ServiceConfig(
        address, state_dir, simulate=args.simulate, options=_options(pairs), name=args.name
    )
    try:
        service = spec.create(config)
    except OptionError as exc:
        raise SystemExit(f"agile-gateway service: {exc}") from None
    return asyncio.run(service.run())


def cmd_status(args: argparse.Namespace) -> int:
    from services.runtime.status import gateway_status

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    if args.wait:
        from services.runtime.ready import wait_ready

        result = asyncio.run(wait_ready(args.bus, state_dir, args.timeout))
        report = result.report or {"bus": "unreachable", "services": []}
        if not result.ready:
            if args.json:
                print(json.dumps({**report, "ready": False}, indent=1))
            print(
                f"agile-gateway status: not ready within {args.timeout:g} s\n"
                + result.explain(state_dir),
                file=sys.stderr,
            )
            return 1
        address = result.address
    else:
        try:
            address = resolve_bus_address(args.bus, state_dir)
        except BusNotFound as exc:
            print(f"agile-gateway status: {exc}", file=sys.stderr)
            return 2
        report = asyncio.run(gateway_status(address, state_dir))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0 if report["bus"] == "reachable" else 1
    print(f"bus {address}: {report['bus']}")
    if report["bus"] != "reachable":
        print(f"  {report.get('error', '')}")
        return 1
    print(f"{'SERVICE':<16} {'STATE':<10} {'PID':>7} {'RESTARTS':>8}  BUS NAMES")
    for svc in report["services"]:
        pid = svc["pid"] if svc["pid"] is not None else "-"
        restarts = svc["restarts"] if svc["restarts"] is not None else "-"
        print(
            f"{svc['name']:<16} {svc['state']:<10} {pid:>7} {restarts:>8}  "
            f"{', '.join(svc['bus_names'])}"
        )
    return 0


def cmd_sim_bluez(args: argparse.Namespace) -> int:
    """The virtual BlueZ on its own: on --bus, or on a private bus it starts and prints."""
    from services.ble.sim.service import SimBlueZService
    from services.busconfig import start_bus_daemon
    from services.catalog import options_of
    from services.options import OptionError
    from services.service import ServiceConfig

    options = _options(args.option)
    try:
        options_of("sim-bluez", options)
    except OptionError as exc:
        raise SystemExit(f"agile-gateway sim-bluez: {exc}") from None
    daemon = None
    if args.bus:
        options["bus"] = args.bus
    else:
        folder = Path(args.state_dir or tempfile.mkdtemp(prefix="agile-bluez-"))
        daemon, address = start_bus_daemon(folder, names=["org.bluez"])
        options["bus"] = address
        print(f"DBUS_SYSTEM_BUS_ADDRESS={address}", flush=True)
    try:
        service = SimBlueZService(ServiceConfig("", Path("."), True, options))
        return asyncio.run(service.run())
    finally:
        if daemon is not None:
            daemon.terminate()


def cmd_ctl(args: argparse.Namespace) -> int:
    from dbus_fast import DBusError

    from services import contract as c
    from services.bus import call, connect

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    try:
        address = resolve_bus_address(args.bus, state_dir)
    except BusNotFound as exc:
        print(f"agile-gateway ctl: {exc}", file=sys.stderr)
        return 2

    async def ask() -> None:
        bus = await connect(address)
        try:
            await call(
                bus,
                c.RUNTIME_NAME,
                c.RUNTIME_PATH,
                c.RUNTIME_IFACE,
                args.action.capitalize(),
                "s",
                [args.name],
            )
        finally:
            bus.disconnect()

    try:
        asyncio.run(ask())
    except (OSError, TimeoutError) as exc:
        print(f"agile-gateway ctl: bus {address}: {exc}", file=sys.stderr)
        return 2
    except DBusError as exc:
        if exc.type == "org.freedesktop.DBus.Error.ServiceUnknown":
            print("agile-gateway ctl: no native runtime on this bus", file=sys.stderr)
        else:
            print(f"agile-gateway ctl: {exc.text}", file=sys.stderr)
        return 1
    return 0


def cmd_options(args: argparse.Namespace) -> int:
    from services.catalog import options_table

    print(options_table(), end="")
    return 0


def cmd_roles(args: argparse.Namespace) -> int:
    from services.contract_api import roles_table

    print(roles_table())
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """What operators and admins did (and were refused), from every service: admins only."""
    import time

    from services.audit import audit_lines, gather
    from services.bus import connect
    from services.contract import AuditEntry
    from services.storage.export import parse_time_ms

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    try:
        address = resolve_bus_address(args.bus, state_dir)
        since = parse_time_ms(args.since, int(time.time() * 1000)) / 1000 if args.since else 0.0
    except (BusNotFound, ValueError) as exc:
        print(f"agile-gateway audit: {exc}", file=sys.stderr)
        return 2

    async def ask() -> tuple[list[AuditEntry], list[str]]:
        bus = await connect(address)
        try:
            return await gather(bus, since)
        finally:
            bus.disconnect()

    try:
        entries, problems = asyncio.run(ask())
    except (OSError, TimeoutError) as exc:
        print(f"agile-gateway audit: bus {address}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([e.to_wire() for e in entries]))
    else:
        for line in audit_lines(entries):
            print(line)
    for problem in problems:
        print(f"agile-gateway audit: {problem}", file=sys.stderr)
    return 1 if problems and not entries else 0


def cmd_limits(args: argparse.Namespace) -> int:
    from services.contract import limits_table

    print(limits_table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agile-gateway", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the bus and every service")
    up.add_argument(
        "--native", action="store_true", help="run services as child processes (no containers)"
    )
    up.add_argument(
        "--containers",
        action="store_true",
        help="run the container stack (images from agile-gateway images build)",
    )
    up.add_argument("--strategy", default="multistage", help="which images (--containers)")
    up.add_argument(
        "--json", action="store_true", help="say that it is up as one JSON object (programs)"
    )
    up.add_argument("--project", default="agile", help="compose project name (--containers)")
    up.add_argument(
        "--registry", default="", help="host:port the stack's updates come from (--containers)"
    )
    up.add_argument(
        "--simulate", action="store_true", help="simulated radios wherever a protocol has one"
    )
    up.add_argument(
        "--state-dir",
        help="state folder (default $AGILE_STATE_DIR or ~/.local/state/agile-gateway)",
    )
    up.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="SERVICE:KEY=VALUE",
        help="an option for one service, e.g. protocolmanager:device-ttl=30 "
        "(agile-gateway options lists them all)",
    )
    up.add_argument(
        "--wait",
        action="store_true",
        help="return once every service owns its bus names, the gateway running on in the "
        "background (--native; --containers always waits); exit 1, saying what failed, "
        "after --timeout",
    )
    up.add_argument(
        "--timeout", type=float, default=90.0, help="seconds for every service to come up"
    )
    up.add_argument(
        "--log-max-bytes",
        type=int,
        default=1 << 20,
        help="a service's log is rotated at this size (--native; default 1 MiB)",
    )
    up.add_argument(
        "--log-files", type=int, default=3, help="rotated logs kept per service (--native)"
    )
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop a gateway brought up with up --wait or --containers")
    down.add_argument("--native", action="store_true", help="the supervisor of up --native")
    down.add_argument("--containers", action="store_true", help="the compose stack")
    down.add_argument("--simulate", action="store_true", help="as it was brought up")
    down.add_argument("--state-dir")
    down.add_argument("--project", default="agile")
    down.set_defaults(func=cmd_down)

    service = sub.add_parser("service", help="run one service in the foreground")
    service.add_argument("name")
    service.add_argument(
        "--bus", help="bus address (default $AGILE_BUS_ADDRESS or the state folder's bus.address)"
    )
    service.add_argument("--state-dir")
    service.add_argument("--simulate", action="store_true")
    service.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    service.set_defaults(func=cmd_service)

    status = sub.add_parser("status", help="list the services on the bus and their state")
    status.add_argument("--bus")
    status.add_argument("--state-dir")
    status.add_argument("--json", action="store_true")
    status.add_argument(
        "--wait",
        action="store_true",
        help="wait until every service owns its bus names (exit 1, saying which did not and "
        "their last log lines, after --timeout)",
    )
    status.add_argument("--timeout", type=float, default=60.0, help="seconds to --wait")
    status.set_defaults(func=cmd_status)
    bluez = sub.add_parser("sim-bluez", help="run the virtual BlueZ (simulated BLE devices)")
    bluez.add_argument(
        "--bus", help="bus to own org.bluez on (default: start a private one and print its address)"
    )
    bluez.add_argument("--state-dir", help="where the private bus's socket goes")
    bluez.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="devices=N extra sensors, notify-hz=F, wanderer=IN,OUT seconds",
    )
    bluez.set_defaults(func=cmd_sim_bluez)

    ctl = sub.add_parser(
        "ctl", help="start, stop or restart a service of the native runtime (through its bus)"
    )
    ctl.add_argument("action", choices=("start", "stop", "restart"))
    ctl.add_argument("name", help="a service, e.g. storage (agile-gateway status lists them)")
    ctl.add_argument("--bus")
    ctl.add_argument("--state-dir")
    ctl.set_defaults(func=cmd_ctl)

    options = sub.add_parser(
        "options", help="every service's --option: name, type, default, meaning (Markdown)"
    )
    options.set_defaults(func=cmd_options)
    limits = sub.add_parser("limits", help="what a client can store on the bus (Markdown)")
    limits.set_defaults(func=cmd_limits)
    roles = sub.add_parser("roles", help="the role every bus method needs (Markdown)")
    roles.set_defaults(func=cmd_roles)
    audit = sub.add_parser(
        "audit", help="what operators and admins did on the gateway, and what was refused"
    )
    audit.add_argument("--since", help="epoch ms, ISO 8601 time, or a duration ago (1h, 7d)")
    audit.add_argument("--json", action="store_true")
    audit.add_argument("--bus")
    audit.add_argument("--state-dir")
    audit.set_defaults(func=cmd_audit)

    _package_commands(sub)
    return parser


def _package_commands(sub: Any) -> None:
    """Each package's own commands, registered as entry points (COMMANDS) so that this
    module, the gateway's, imports nothing of the build host's or the operator's side:
    each gets `group(name, help)`, the subcommands of `agile-gateway NAME` (one group
    may be filled by several packages, as `images` is by the build side and the update
    service)."""
    from importlib.metadata import entry_points

    groups: dict[str, Any] = {}

    def group(name: str, text: str) -> Any:
        if name not in groups:
            parser = sub.add_parser(name, help=text)
            groups[name] = parser.add_subparsers(dest=f"{name}_command", required=True)
        return groups[name]

    for entry in sorted(entry_points(group=COMMANDS), key=lambda e: e.name):
        entry.load()(group)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
