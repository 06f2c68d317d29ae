"""`agile-tui`: parse arguments, find the gateway (or start the demo one), run the app.

Textual and the app are imported only after the arguments are checked, so
`--help` and argument errors are instant even on a slow Pi.
"""

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from services.bus import BusNotFound, default_state_dir, resolve_bus_address


@contextlib.contextmanager
def demo_gateway() -> Iterator[Path]:
    """The native runtime with simulated radios in a temporary state folder, for the app's life."""
    state_dir = Path(tempfile.mkdtemp(prefix="agile-demo-"))
    from services.lifetime import dies_with_parent
    from services.runtime.launch import up_command, wait_until_up

    # If agile-tui dies without cleaning up (the ssh session dropped), the demo
    # gateway gets SIGTERM from the kernel and stops its services.
    proc = subprocess.Popen(
        up_command(state_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        preexec_fn=dies_with_parent(),
    )
    try:
        up, said = wait_until_up(proc)
        if not up:
            proc.kill()
            raise SystemExit(
                f"agile-tui: the demo gateway did not start ({said.strip() or 'no output'}); "
                f"logs in {state_dir / 'logs'}"
            )
        yield state_dir
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(state_dir, ignore_errors=True)


def runtime_of(state_dir: Path) -> str:
    try:
        status = json.loads((state_dir / "runtime.json").read_text())
    except (OSError, ValueError):
        return "remote"
    return status.get("runtime", "native") if status.get("state") == "running" else "remote"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agile-tui", description="The AGILE gateway operator's terminal."
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start an embedded demo gateway (simulated devices) and use it",
    )
    parser.add_argument(
        "--bus",
        help="gateway bus address (default $AGILE_BUS_ADDRESS, "
        "then the state folder's bus.address)",
    )
    parser.add_argument("--state-dir", help="the gateway's state folder (native runtime)")
    parser.add_argument(
        "--docker",
        metavar="URL",
        help="Docker engine, e.g. unix:///var/run/docker.sock or ssh://host "
        "(default $DOCKER_HOST or the local socket)",
    )
    parser.add_argument(
        "--registry",
        metavar="HOST:PORT",
        help="registry the container stack's updates come from "
        "(default: the one given to agile-gateway up --containers)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default $AGILE_TUI_CONFIG or ~/.config/agile-tui/config.toml)",
    )
    parser.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="USER@HOST[:PORT]",
        help="a gateway of the fleet, over SSH (repeatable; also [gateways.NAME] in the config)",
    )
    parser.add_argument(
        "--section",
        choices=("containers", "devices", "data", "images", "fleet"),
        default="devices",
        help="section to open first",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fleet.config import ConfigError, load_config
    from fleet.gateways import GatewayError, fleet

    try:
        config = load_config(Path(args.config) if args.config else None)
        gateways = fleet(config.gateways, str(config.path), args.gateway)
    except (ConfigError, GatewayError) as exc:
        print(f"agile-tui: {exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        if args.demo:
            if args.bus or args.state_dir:
                print(
                    "agile-tui: --demo starts its own gateway; drop --bus/--state-dir",
                    file=sys.stderr,
                )
                return 2
            state_dir = stack.enter_context(demo_gateway())
            runtime = "demo"
        else:
            state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
            runtime = runtime_of(state_dir)
        from agile_tui.client.session import Session

        try:
            address, problem = resolve_bus_address(args.bus, state_dir), ""
        except BusNotFound as exc:
            address, problem = None, str(exc)
        session = Session(
            bus_address=address,
            bus_problem=problem,
            state_dir=state_dir if (state_dir / "runtime.json").exists() else None,
            docker_url=args.docker,
            registry=args.registry,
            runtime=runtime,
        )
        from agile_tui.app import AgileApp

        AgileApp(session, config, start_mode=args.section, gateways=gateways).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
