"""`agile-gateway images base|build|publish|report|plan`: the hierarchy, builds,
publishing and the report on the build host, and plans straight from the engine (the
update service's operations join them from services.updater.cli)."""

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from buildhost import trust_commands
from buildhost.trust import DEFAULT_FOLDER
from services.bus import default_state_dir


def add_commands(group: Callable[[str, str], Any]) -> None:
    """The `images` commands of the build host and the plan (the update service's
    operations join them: services.updater.cli)."""
    images_sub = group("images", "the service images")
    trust_commands.add_commands(group)
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
    publish.add_argument(
        "--trust", help=f"the trust folder whose release key signs it (default {DEFAULT_FOLDER})"
    )
    publish.add_argument(
        "--unsigned",
        action="store_true",
        help="publish without signing (gateways refuse it unless updater:allow-unsigned)",
    )
    publish.set_defaults(func=cmd_images_publish)
    report = images_sub.add_parser(
        "report", help="sizes, layers, unique and shared bytes; the stack on disk per strategy"
    )
    report.set_defaults(func=cmd_images_report)
    plan = images_sub.add_parser(
        "plan", help="bytes each service's update would download, and the stack's total"
    )
    plan.add_argument("service", nargs="+")
    plan.add_argument("--registry", help="host:port, e.g. 127.0.0.1:5000 (default: the stack's)")
    plan.add_argument(
        "--link", type=float, default=0.0, help="Mbit/s of the link: say how long too"
    )
    plan.add_argument("--state-dir", help="of the container stack")
    plan.set_defaults(func=cmd_images_plan)
    return images_sub


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
    from buildhost.hierarchy import ensure_hierarchy

    def work(client: Any) -> None:  # a docker.DockerClient (untyped)
        ensure_hierarchy(client, args.arch, say=say, force=args.force)

    return _with_engine("base", work)


def say(line: str) -> None:
    print(line, flush=True)


def cmd_images_build(args: argparse.Namespace) -> int:
    from buildhost.build import build

    def work(client: Any) -> None:  # a docker.DockerClient (untyped)
        # The whole build log, as `docker build` prints it (agile-tui shows it as it comes).
        for line in build(client, args.service, args.strategy, args.arch, say=say):
            say(line)

    return _with_engine("build", work)


def cmd_images_publish(args: argparse.Namespace) -> int:
    from buildhost.publish import publish
    from buildhost.trust import TrustFolder

    trust = None if args.unsigned else TrustFolder(Path(args.trust or DEFAULT_FOLDER))
    if trust is not None and not (trust.metadata / "root.json").exists():
        print(
            f"agile-gateway images publish: no trust folder at {trust.folder}: make one "
            "with agile-gateway trust init (or publish --unsigned)",
            file=sys.stderr,
        )
        return 1

    def work(client: Any) -> None:  # a docker.DockerClient (untyped)
        publish(client, args.registry, args.service, args.strategy, args.keep, say, trust)

    return _with_engine("publish", work)


def cmd_images_report(args: argparse.Namespace) -> int:
    from buildhost.report import report

    return _with_engine("report", lambda client: print(report(client)))


def cmd_images_plan(args: argparse.Namespace) -> int:
    """What each service's update would download (read-only: straight from the engine,
    with the same function the update service plans with)."""
    from services.catalog import options_of
    from services.compose import stack_settings
    from services.images.link_rate import prediction_text
    from services.images.trust import Policy
    from services.images.update import UpdateError, plan

    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()

    def work(client: Any) -> int:  # a docker.DockerClient (untyped)
        registry = args.registry or stack_settings(state_dir).get("registry")
        if not registry:
            raise UpdateError(
                "no registry: give --registry HOST:PORT, or bring the stack up with --registry"
            )
        settings = stack_settings(state_dir)
        strategy, project = settings["strategy"], settings["project"]
        bit_s = args.link * 1e6

        def wait(nbytes: int) -> str:
            return f", {prediction_text(nbytes * 8 / bit_s, bit_s, 'set')}" if bit_s else ""

        # The update service's policy; its verified metadata is its own (in its
        # volume): this read-only plan checks from the provisioned root each time.
        updater = [p.split("=", 1) for p in settings.get("options", {}).get("updater", [])]
        raw = {k: v for k, v in (p for p in updater if len(p) == 2)}
        with tempfile.TemporaryDirectory(prefix="agile-trust-") as cache:
            trust = Policy.of(options_of("updater", raw), state_dir, Path(cache)).once()
            plans = [
                plan(client, registry, service, strategy, project, trust=trust)
                for service in args.service
            ]
        total = 0
        for service, p in zip(args.service, plans, strict=True):
            total += p.download_bytes
            if p.up_to_date:
                print(f"{service:<10} up to date")
                continue
            print(
                f"{service:<10} {p.signed.describe()}"
                if p.signed
                else f"{service:<10} UNSIGNED (updater:allow-unsigned is on)"
            )
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
