"""`org.eclipse.agail.Updater` (addition): plans, updates, rollbacks, builds and prunes of
the gateway's service images run here, on the gateway, not in a client. A client starts
an operation, watches its Log/Progress/Ended signals, and can leave: the operation goes
on, and `Current` tells the next client where it is.

This is the one process that drives the Docker engine, which makes it as privileged as
root on the host; it is also the only one with a network (to reach the registry)."""

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from dbus_fast import DBusError
from dbus_fast.service import ServiceInterface, signal
from dbus_fast.service import method as dbus_method

from services import contract as c
from services.atomicjson import write_atomic
from services.catalog import IMAGES, options_of
from services.errors import EngineUnreachable
from services.images import link_rate
from services.images.journal import FILE, Journal
from services.images.registry_access import INSECURE_ENV
from services.images.trust import Policy
from services.service import BusService, ServiceConfig
from services.updater.operations import Busy, Operations, Running, Work

log = logging.getLogger(__name__)

REJOIN_S = 1.0  # between tries to join the bus again
ENGINE_BACK_S = 300.0  # how long an update cut off by the engine waits for it to return
SELF = "updater"  # the image that runs this service: it does not replace itself
# The ZigBee network as it was before the zigbee service's last update: a rollback puts
# it back (a new version may have changed what the radio holds). It holds the network
# key: the updater's own, 0600.
ZIGBEE_BEFORE = "zigbee-network-before-update.json"
ZIGBEE_BACK_S = 120.0  # for the rolled-back zigbee service to be on the bus again
Outcome = tuple[c.OperationState, str]  # how an operation ended, and what to say of it


class UpdaterService(BusService):
    bus_names = (c.UPDATER_NAME,)

    def __init__(self, config: ServiceConfig) -> None:
        super().__init__(config)
        opts = options_of("updater", config.options)
        self.window_s: float = opts["window"]
        self.registry: str = opts["registry"] or ""
        self.registries = {r.strip() for r in (opts["registries"] or "").split(",") if r.strip()}
        self.docker_url: str | None = opts["docker"]
        self.state_dir: Path = config.state_dir
        self.journal = Journal(Path(opts["journal"] or config.state_dir / FILE))
        # The verified metadata beside the journal: in the updater's own volume, as the
        # stack's state folder is read-only to it.
        # The registry client reads it (services.images.registry_access); in this process
        # (the native runtime's too) only the update service reaches registries.
        os.environ[INSECURE_ENV] = opts["insecure-registries"]
        self.trust = Policy.of(opts, config.state_dir, self.journal.path.parent / "trust")
        self.allow_local_builds: bool = opts["allow-local-builds"]
        if self.trust.allow_unsigned:
            log.warning(
                "updater:allow-unsigned is on: images no release key signed will run "
                "(whoever controls the registry or the network decides what runs)"
            )
        # Beside the journal: both outlive the updater's container.
        rate_file = self.journal.path.parent / link_rate.FILE
        self.link = link_rate.LinkRate(rate_file, opts["link"] * 1e6)
        self._client: Any = None
        self.operations = Operations(self._heard)
        self.iface: UpdaterInterface
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.iface = UpdaterInterface(self)  # a new one on every bus it joins
        self.exports.export(c.UPDATER_PATH, self.iface)
        if self.operations.current is None and self.journal.path.exists():
            # This service was stopped mid-update (the engine restarting stops it too).
            self.operations.start("recover", "stack", self.recover)

    async def run(self, stop_event: asyncio.Event | None = None) -> int:
        """As every service, except that losing the bus does not end it: an update of
        the bus replaces the bus's container under a running operation, which must
        finish (or roll back) all the same. It joins the new bus and serves on."""
        stop_event = stop_event or asyncio.Event()
        while True:
            try:
                if await super().run(stop_event) == 0:
                    return 0
                log.warning("lost the gateway bus; joining it again (operations go on)")
            except (OSError, TimeoutError) as exc:
                log.info("the gateway bus is not back yet: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), REJOIN_S)
            if stop_event.is_set():
                return 0

    # -- the engine and the stack (called in worker threads) --

    def engine(self) -> Any:
        if self._client is None:
            from services.engine import connect  # only this service needs the Docker SDK

            self._client = connect(self.docker_url, timeout=900)
        return self._client

    def allowed(self, registry: str) -> None:
        """Refuse, before a single request, a registry the admin did not allow: a caller
        must not make the updater reach any address it names from the host's network."""
        if not registry:
            return
        from services.compose import StackError, stack_settings

        allowed = {self.registry, *self.registries} - {""}
        with contextlib.suppress(StackError):
            allowed.add(stack_settings(self.state_dir).get("registry") or "")
        if registry not in allowed:
            raise c.AccessDenied(
                f"registry {c.cut(registry)!r} is not one this gateway allows "
                f"({', '.join(sorted(allowed - {''})) or 'none'}; an admin sets "
                "updater:registries)"
            )

    def stack(self, registry: str) -> tuple[str, str, str]:
        """(registry, strategy, compose project) of the stack this updater serves."""
        from services.compose import stack_settings

        settings = stack_settings(self.state_dir)
        registry = registry or self.registry or settings.get("registry") or ""
        if not registry:
            raise RuntimeError(
                "no registry: give one, or bring the stack up with --registry HOST:PORT"
            )
        return registry, settings["strategy"], settings["project"]

    def plan(self, registry: str) -> tuple[str, str, list[c.ServicePlan]]:
        from services.images.update import UpdateError, plan, running_version

        client = self.engine()
        registry, strategy, project = self.stack(registry)
        link = self.link.link()
        trust = self.trust.once()  # the metadata refreshed once for the whole stack
        plans = []
        for service in IMAGES:
            if service == SELF:
                continue
            running = running_version(client, service, strategy, project)
            try:
                p = plan(client, registry, service, strategy, project, trust=trust)
            except UpdateError as exc:
                plans.append(
                    c.ServicePlan(
                        service, running, problem=str(exc), short=exc.short, refused=exc.refused
                    )
                )
                continue
            plans.append(
                c.ServicePlan(
                    service,
                    running,
                    p.reference,
                    p.version,
                    p.download_bytes,
                    p.layers_missing,
                    p.layers_total,
                    p.up_to_date,
                    method=p.method,
                    pull_bytes=p.pull_bytes,
                    delta_bytes=p.delta.size if p.delta else 0,
                    seconds=link.seconds(p.download_bytes),
                    link_bit_s=link.bit_s,
                    link_source=link.source,
                    release=p.signed.release if p.signed else 0,
                    signed_by=", ".join(p.signed.keys) if p.signed else "",
                    expires=p.signed.expires.isoformat() if p.signed else "",
                    unsigned=p.signed is None,
                    metadata_bytes=p.signed.metadata_bytes if p.signed else 0,
                )
            )
        return registry, strategy, plans

    # -- operations --

    def update(self, op: Running, services: list[str], registry: str, window_s: float) -> Outcome:
        from services.images.update import update

        if self.journal.path.exists():  # its recovery failed (the engine stayed away)
            op.say("an earlier update was cut off; finishing it first")
            self.recover(op)
        client = self.engine()
        registry, _, _ = self.stack(registry)
        rolled_back = []
        # The bus last: every other service reconnects when it restarts.
        for service in sorted(services, key=lambda s: s == "bus"):
            if service == "zigbee":
                self.back_up_zigbee(op)
            try:
                ok = update(
                    client,
                    self.state_dir,
                    registry,
                    service,
                    say=op.say,
                    progress=op.progress,
                    window_s=window_s or self.window_s,
                    check=op.check,
                    commit=op.past_return,
                    journal=self.journal,
                    measured=self.link.record,
                    trust=self.trust,
                )
            except Exception as exc:
                if not self.journal.path.exists():
                    raise  # cut off before it changed anything
                op.say(f"{service}: the update was cut off ({exc}); waiting for the engine")
                return self.recover(op)
            op.cancellable = True  # between services, a cancel stops before the next
            if not ok:
                rolled_back.append(service)
                if service == "zigbee":
                    self.restore_zigbee(op)
        if rolled_back:
            return (
                c.OperationState.ROLLED_BACK,
                f"{', '.join(rolled_back)}: the new version was not healthy; rolled back",
            )
        return c.OperationState.SUCCEEDED, f"{', '.join(services)}: updated"

    def recover(self, op: Running) -> Outcome:
        """Bring a service whose update was cut off back to one version, once the engine
        answers again."""
        from services.images.update import recover

        op.past_return()
        deadline = time.monotonic() + ENGINE_BACK_S
        while True:
            self._client = None  # a client of the engine before its restart
            try:
                client = self.engine()
                break
            except EngineUnreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        try:
            entry = self.journal.read()
        except ValueError:
            entry = None  # recover says so
        healthy = recover(client, self.journal, op.say, self.window_s)
        if entry is None or healthy is None:
            return c.OperationState.SUCCEEDED, "no update was cut off"
        if not healthy:
            return c.OperationState.FAILED, f"{entry.service}: back on one version, not healthy"
        if entry.committed:
            return c.OperationState.SUCCEEDED, f"{entry.service}: the cut-off update is finished"
        return c.OperationState.ROLLED_BACK, f"{entry.service}: the cut-off update is undone"

    def rollback(self, op: Running, service: str) -> Outcome:
        from services.images.update import rollback

        op.past_return()
        problem = rollback(
            self.engine(), self.state_dir, service, self.window_s, journal=self.journal
        )
        if service == "zigbee" and not problem:
            self.restore_zigbee(op)
        if problem:
            return c.OperationState.FAILED, f"{service}: back on the previous image, but {problem}"
        return c.OperationState.SUCCEEDED, f"{service}: back on agile/{service}:previous"

    def install_local(self, op: Running, service: str, window_s: float) -> Outcome:
        from services.images.update import install_local

        op.past_return()
        ok = install_local(
            self.engine(), self.state_dir, service, op.say, window_s or self.window_s, self.journal
        )
        if not ok:
            return c.OperationState.ROLLED_BACK, f"{service}: the local build was not healthy"
        return c.OperationState.SUCCEEDED, f"{service}: runs the image built here"

    def build(self, op: Running, service: str, strategy: str) -> Outcome:
        from buildhost.build import build

        lines = build(self.engine(), service, strategy, say=op.say)
        try:
            for line in lines:
                op.say(line)
                op.check()  # leaving the build's stream ends it on the engine
        finally:
            lines.close()
        return c.OperationState.SUCCEEDED, f"built agile/{service}:{strategy}"

    def prune(self, op: Running) -> Outcome:
        from services.images.update import prune

        op.past_return()
        freed = prune(self.engine())
        return c.OperationState.SUCCEEDED, f"pruned: {freed:,} bytes freed"

    # -- the ZigBee network around an update of its service --

    def _zigbee(self, member: str, signature: str = "", *body: Any, timeout: float = 60) -> Any:
        """A call to the ZigBee service, from an operation's thread."""
        from services.zigbee.calls import zigbee_call

        if self._loop is None:
            raise RuntimeError("the update service is not on the bus")
        return asyncio.run_coroutine_threadsafe(
            zigbee_call(self.bus, member, signature, *body, timeout=timeout), self._loop
        ).result(timeout + 5)

    def back_up_zigbee(self, op: Running) -> None:
        """The network, backed up before the zigbee service changes; a gateway without a
        ZigBee service (or a radio) is updated all the same, and says so."""
        target = self.journal.path.parent / ZIGBEE_BEFORE
        try:
            _, name, devices = self._zigbee("TakeBackup")
            text = self._zigbee("ExportBackup", "s", name)
        except (DBusError, OSError, TimeoutError, RuntimeError) as exc:
            target.unlink(missing_ok=True)  # an older one is not this update's
            op.say(f"zigbee: the network is not backed up before the update: {exc}")
            return
        write_atomic(target, text.encode(), mode=0o600)
        op.say(f"zigbee: the network is backed up before the update ({name}, {devices} devices)")

    def restore_zigbee(self, op: Running) -> None:
        """The network as it was before the update, onto the radio of the version that
        runs again (once it is back on the bus)."""
        target = self.journal.path.parent / ZIGBEE_BEFORE
        if not target.exists():
            op.say("zigbee: no network backup from before the update to restore")
            return
        text = target.read_text()
        deadline = time.monotonic() + ZIGBEE_BACK_S
        while True:
            try:
                self._zigbee("Restore", "s", text, timeout=ZIGBEE_BACK_S)
                break
            except DBusError as exc:
                if exc.type == c.INVALID_ARGS_ERROR or time.monotonic() > deadline:
                    op.say(f"zigbee: the network from before the update not restored: {exc.text}")
                    return
                time.sleep(1)  # not on the bus yet, or its radio not open yet
            except (OSError, TimeoutError, RuntimeError) as exc:
                op.say(f"zigbee: the network from before the update not restored: {exc}")
                return
        op.say("zigbee: the network from before the update is restored")

    def _heard(self, op: Running, event: tuple[object, ...]) -> None:
        """An operation's event (in its thread) as a signal (on the bus's loop)."""
        if self._loop is None or self._loop.is_closed():
            return
        kind, *args = event

        def send() -> None:
            if not self.bus.connected:
                return  # no bus to say it on (being replaced): Current keeps the lines
            member = {"log": "Log", "progress": "Progress", "ended": "Ended"}[str(kind)]
            getattr(self.iface, member)(op.id, *args)

        self._loop.call_soon_threadsafe(send)


class UpdaterInterface(ServiceInterface):
    def __init__(self, service: UpdaterService) -> None:
        super().__init__(c.UPDATER_IFACE)
        self.service = service

    def _start(self, kind: str, target: str, work: Work) -> str:
        try:
            op = self.service.operations.start(kind, target, work)
        except Busy as exc:
            raise DBusError(c.UPDATER_BUSY_ERROR, str(exc)) from None
        self.Started(op.id, kind, target)
        return op.id

    @dbus_method()
    async def Plan(self, registry: c.Str) -> c.PlanWire:
        """What updating each service image takes, from `registry` ("" = the stack's)."""
        self.service.allowed(registry)
        try:
            registry, strategy, plans = await asyncio.to_thread(self.service.plan, registry)
        except Exception as exc:  # the engine, the stack, the registry: said to the client
            raise DBusError(c.UPDATER_FAILED_ERROR, str(exc)) from None
        return [registry, strategy, [p.to_wire() for p in plans]]

    @dbus_method()
    def Update(self, services: c.StrList, registry: c.Str, window_s: c.Double) -> c.Str:
        """Update these service images (pull, switch, health gate, roll back); the
        operation's id. window_s 0: the service's default."""
        unknown = [s for s in services if s not in IMAGES]
        if not services or unknown:
            raise c.InvalidArgs(
                f"no service image {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(IMAGES)}"
            )
        if SELF in services:
            raise c.InvalidArgs(
                "the update service does not replace itself while it runs: "
                "pull its image and bring the stack up again"
            )
        self.service.allowed(registry)
        return self._start(
            "update",
            " ".join(services),
            lambda op: self.service.update(op, list(services), registry, window_s),
        )

    @dbus_method()
    def Rollback(self, service: c.Str) -> c.Str:
        if service not in IMAGES or service == SELF:
            raise c.InvalidArgs(f"no service image {service!r} to roll back")
        return self._start("rollback", service, lambda op: self.service.rollback(op, service))

    @dbus_method()
    def InstallLocal(self, service: c.Str, window_s: c.Double) -> c.Str:
        """Switch a service to the image built on this gateway (health gate, rollback),
        where the trust policy allows local builds: they are signed by no release key."""
        if service not in IMAGES or service == SELF:
            raise c.InvalidArgs(f"no service image {service!r} to install")
        if not self.service.allow_local_builds:
            raise c.AccessDenied(
                "this gateway runs signed releases only: images built here are not "
                "installed (an admin sets updater:allow-local-builds)"
            )
        return self._start(
            "install",
            service,
            lambda op: self.service.install_local(op, service, window_s),
        )

    @dbus_method()
    def Build(self, service: c.Str, strategy: c.Str) -> c.Str:
        from services.images.recipes import STRATEGIES

        if service not in IMAGES or strategy not in STRATEGIES:
            raise c.InvalidArgs(
                f"build {service!r} {strategy!r}: images {', '.join(IMAGES)}; "
                f"strategies {', '.join(STRATEGIES)}"
            )
        return self._start(
            "build",
            f"{service} {strategy}",
            lambda op: self.service.build(op, service, strategy),
        )

    @dbus_method()
    def Prune(self) -> c.Str:
        return self._start("prune", "images", self.service.prune)

    @dbus_method()
    def Cancel(self) -> c.Bool:
        """True if the running operation stops without changing anything; False if there
        is none, or it is past that point (it then finishes or rolls back)."""
        return self.service.operations.cancel()

    @dbus_method()
    def Current(self) -> c.OperationWire:
        """The running operation, or the last one (id "" if there has been none)."""
        op = self.service.operations.current
        return (op.snapshot() if op else c.Operation()).to_wire()

    @signal()
    def Started(self, op_id: str, kind: str, target: str) -> c.StrTriple:
        return [op_id, kind, target]

    @signal()
    def Log(self, op_id: str, line: str) -> c.StrPair:
        return [op_id, line]

    @signal()
    def Progress(self, op_id: str, layer: str, done: int, total: int) -> c.ProgressWire:
        return [op_id, layer, done, total]

    @signal()
    def Ended(self, op_id: str, state: str, message: str) -> c.StrTriple:
        return [op_id, state, message]


def create(config: ServiceConfig) -> UpdaterService:
    return UpdaterService(config)
