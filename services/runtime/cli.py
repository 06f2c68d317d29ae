"""`agile-gateway`: run the gateway, one service, or ask what is running."""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.bus import BusNotFound, default_state_dir, resolve_bus_address

if TYPE_CHECKING:
    from services.updater.client import UpdaterClient

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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


def _with_engine(command: str, work: Callable[[Any], int | None]) -> int:
    """Run `work(docker_client)` for an `images` command; its errors become one line each."""
    import docker

    from services.engine import connect, unreachable
    from services.errors import AgileError, EngineUnreachable

    try:
        return int(work(connect(timeout=900)) or 0)
    except EngineUnreachable as exc:
        print(f"agile-gateway images {command}: {exc}", file=sys.stderr)
        return 2
    except AgileError as exc:
        print(f"agile-gateway images {command}: {exc}", file=sys.stderr)
        return 1
    except docker.errors.DockerException as exc:  # one the work did not translate
        print(f"agile-gateway images {command}: {unreachable(exc)}", file=sys.stderr)
        return 2


def cmd_images_base(args: argparse.Namespace) -> int:
    from services.images.hierarchy import ensure_hierarchy

    def work(client: Any) -> None:  # a docker.DockerClient (untyped)
        ensure_hierarchy(client, args.arch, say=say, force=args.force)

    return _with_engine("base", work)


def say(line: str) -> None:
    print(line, flush=True)


def cmd_images_build(args: argparse.Namespace) -> int:
    from services.images.build import build

    def work(client: Any) -> None:  # a docker.DockerClient (untyped)
        # The whole build log, as `docker build` prints it (agile-tui shows it as it comes).
        for line in build(client, args.service, args.strategy, args.arch, say=say):
            say(line)

    return _with_engine("build", work)


def cmd_images_publish(args: argparse.Namespace) -> int:
    from services.images.publish import publish

    def work(client: Any) -> None:  # a docker.DockerClient (untyped)
        publish(client, args.registry, args.service, args.strategy, args.keep, say)

    return _with_engine("publish", work)


def cmd_images_report(args: argparse.Namespace) -> int:
    from services.images.report import report

    return _with_engine("report", lambda client: print(report(client)))


def cmd_images_plan(args: argparse.Namespace) -> int:
    """What each service's update would download (read-only: straight from the engine,
    with the same function the update service plans with)."""
    from services.compose import stack_settings
    from services.images.link_rate import prediction_text
    from services.images.update import UpdateError, plan

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()

    def work(client: Any) -> int:  # a docker.DockerClient (untyped)
        registry = args.registry or stack_settings(state_dir).get("registry")
        if not registry:
            raise UpdateError(
                "no registry: give --registry HOST:PORT, or bring the stack up with --registry"
            )
        strategy = stack_settings(state_dir)["strategy"]
        bit_s = args.link * 1e6

        def wait(nbytes: int) -> str:
            return f", {prediction_text(nbytes * 8 / bit_s, bit_s, 'set')}" if bit_s else ""

        total = 0
        for service in args.service:
            p = plan(client, registry, service, strategy)
            total += p.download_bytes
            if p.up_to_date:
                print(f"{service:<10} up to date")
                continue
            delta = f"delta {p.delta.size:,} bytes" if p.delta else "no delta"
            print(
                f"{service:<10} {p.download_bytes:,} bytes by {p.method}"
                + (f" -> {p.version}" if p.version else "")
                + f" (pull {p.pull_bytes:,} bytes, {p.layers_missing} of {p.layers_total}"
                f" layers; {delta}{wait(p.download_bytes)})"
            )
        print(f"{'stack':<10} {total:,} bytes to download{wait(total)}")
        return 0

    return _with_engine("plan", work)


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
        if command == "rollback":
            return client.rollback(args.service)
        return client.prune()

    async def run() -> int:
        bus = await connect(resolve_bus_address(args.bus, state_dir))
        try:
            op = await follow(bus, start, say)
        finally:
            bus.disconnect()
        return EXIT_CODES.get(op.state, 1)

    try:
        return asyncio.run(run())
    except (BusNotFound, OSError, TimeoutError, DBusError) as exc:
        print(f"agile-gateway images {command}: {error_text(exc)}", file=sys.stderr)
        return 1


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

    store = sub.add_parser("storage", help="the recorded sensor data")
    store_sub = store.add_subparsers(dest="storage_command", required=True)
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

    images = sub.add_parser("images", help="the service images")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    base = images_sub.add_parser(
        "base", help="build the base-image hierarchy (debian -> python runtime, build image)"
    )
    base.add_argument("--arch", default="amd64", help="Debian architecture (default amd64)")
    base.add_argument("--force", action="store_true", help="rebuild even if up to date")
    base.set_defaults(func=cmd_images_base)
    build = images_sub.add_parser("build", help="build a service image")
    build.add_argument("service", help="bus, core, storage, ble or zigbee")
    build.add_argument(
        "--strategy",
        default="multistage",
        help="baseline, multistage (default), squashed (above the shared runtime), squashed-all",
    )
    build.add_argument("--arch", default="amd64")
    build.set_defaults(func=cmd_images_build)
    publish = images_sub.add_parser(
        "publish",
        help="push a service image and delta bundles from its last published versions",
    )
    publish.add_argument("service")
    publish.add_argument("--strategy", default="multistage")
    publish.add_argument("--registry", required=True, help="host:port, e.g. 127.0.0.1:5000")
    publish.add_argument(
        "--keep", type=int, default=3, help="bundles from this many earlier versions (default 3)"
    )
    publish.set_defaults(func=cmd_images_publish)
    report = images_sub.add_parser(
        "report", help="sizes, layers, unique and shared bytes; the stack on disk per strategy"
    )
    report.set_defaults(func=cmd_images_report)
    for name, text in (
        ("plan", "bytes each service's update would download, and the stack's total"),
        ("update", "pull a service's new image, switch to it, roll back if unhealthy"),
        ("rollback", "go back to the image a service ran before its last update"),
        ("prune", "remove the images updates left behind"),
    ):
        cmd = images_sub.add_parser(name, help=text)
        if name != "prune":
            cmd.add_argument("service", nargs="+" if name == "plan" else None)
        if name in ("plan", "update"):
            cmd.add_argument(
                "--registry", help="host:port, e.g. 127.0.0.1:5000 (default: the stack's)"
            )
        if name == "update":
            cmd.add_argument(
                "--window", type=float, default=0.0, help="seconds to be healthy (default 60)"
            )
        if name == "plan":
            cmd.add_argument(
                "--link", type=float, default=0.0, help="Mbit/s of the link: say how long too"
            )
        else:
            cmd.add_argument("--bus", help="the gateway bus (default: the state folder's)")
        cmd.add_argument("--state-dir", help="of the container stack")
        cmd.set_defaults(func=cmd_images_plan if name == "plan" else cmd_images_operation)

    from services.fleet.cli import add_commands

    add_commands(sub)
    return parser


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
