"""The deterministic states the TUI's snapshot tests and screenshots are taken in.

Everything that varies between runs is fixed here: the clock, the host name,
the Docker engine (an address where none listens), and the native runtime's
process table (a runtime.json whose pids do not exist, so no CPU or memory
readings). The gateway itself is real: dbus-daemon, services, Dummy devices.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.app import App
from textual.pilot import Pilot

from agile_tui.app import AgileApp
from agile_tui.client.session import Session
from agile_tui.models.polled import Polled
from agile_tui.screens.build import BuildScreen
from agile_tui.screens.data import DataScreen
from agile_tui.screens.updates import UpdatesScreen
from agile_tui.widgets.live_table import LiveTable
from fleet.config import Config
from testkit.broker import Broker
from tests.helpers import fill_up

FIXED_NOW = 1_800_000_000.0
NO_ENGINE = "unix:///nonexistent/docker.sock"

GATEWAY_OPTIONS = (
    "sim-bluez:wanderer=1000000000,1",
    "sim-bluez:rssi-jitter=0",
    "zigbee:faults=0",  # no device that drops off or leaves during a snapshot
    "zigbee:backups=0",  # none taken on its own: no backup time that moves with the day
    f"updater:docker={NO_ENGINE}",  # the same on every machine: no engine answers
)


def mqtt_options(broker: Broker) -> list[str]:
    """The demo gateway's bridge to a test broker (the Devices section shows it bridging)."""
    return [f"mqtt:{k}={v}" for k, v in broker.options().items()]


DISCOVERED = 13  # 5 BLE peripherals, 3 Dummy devices, 5 ZigBee devices
ENV_SENSOR, SENSORTAG, DUMMY_SWITCH = "bleC0FFEE000001", "bleC0FFEE000003", "dummyD00000000003"
ZB_CLIMATE = "zb00124b001c000001"


def frozen_runtime_dir(folder: Path) -> Path:
    """A state folder whose runtime.json describes a demo runtime with fixed numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    services = {
        name: {
            "name": name,
            "pid": 4_000_000 + i,
            "state": "running",
            "restarts": restarts,
            "started_at": FIXED_NOW - uptime,
            "last_exit": None,
            "log": "",
        }
        for i, (name, uptime, restarts) in enumerate(
            [("devicemanager", 3725, 0), ("dummy", 3724, 1), ("protocolmanager", 3726, 0)]
        )
    }
    (folder / "runtime.json").write_text(
        json.dumps({"runtime": "native", "state": "running", "services": services})
    )
    return folder


def make_app(
    bus_address: str | None,
    state_dir: Path | None,
    mode: str = "devices",
    bus_problem: str = "",
    keys: dict[str, str] | None = None,
    docker_url: str = NO_ENGINE,
    gateways: list | None = None,  # type: ignore[type-arg]
) -> AgileApp:
    session = Session(
        bus_address=bus_address,
        bus_problem=bus_problem,
        state_dir=state_dir,
        docker_url=docker_url,
        runtime="demo",
        hostname="gateway",
        clock=lambda: FIXED_NOW,
    )
    # No periodic refresh during a test: states are reached by actions, and a
    # refresh landing just before the screenshot would make it differ.
    config = Config(keys=keys or {}, refresh_seconds=30)
    return AgileApp(session, config, start_mode=mode, gateways=gateways)


def agile(pilot: Pilot[None]) -> AgileApp:
    app = pilot.app
    assert isinstance(app, AgileApp)
    return app


async def until(pilot: Pilot[None], check: Callable[[], bool], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("the TUI did not reach the expected state in time")
        await pilot.pause(0.05)


async def on_screen(pilot: Pilot[None], name: str) -> None:
    """Wait until the screen on top is the one of that class name."""
    await until(pilot, lambda: type(pilot.app.screen).__name__ == name)


def table(pilot: Pilot[None], table_id: str) -> LiveTable:
    return pilot.app.screen.query_one(f"#{table_id}", LiveTable)


def rows(pilot: Pilot[None], table_id: str) -> int:
    return len(table(pilot, table_id).keys())


# Workers that run as long as the app or their screen does (the bus connection waits
# for its end, the engine connection retries while no engine answers, the models fetch
# while their screen is shown).
LIFELONG_WORKERS = {"bus", "engine", "containers-events", "devices-poll"}


def models_idle(app: App[object]) -> bool:
    """No section's model fetching, or about to."""
    models = (getattr(screen, "model", None) for screen in app.screen_stack)
    return all(model.idle for model in models if isinstance(model, Polled))


async def settled(pilot: Pilot[None], waiting: str = "") -> None:
    """Let workers and models finish and drop toasts, so that the screen shows only the
    state. `waiting`: the group of the worker that waits for the modal on top."""
    done = LIFELONG_WORKERS | {waiting}
    app = pilot.app
    await until(
        pilot,
        lambda: all(w.is_finished or w.group in done for w in app.workers) and models_idle(app),
    )
    pilot.app.clear_notifications()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def engine_settled(pilot: Pilot[None]) -> None:
    await until(pilot, lambda: pilot.app.engine_state == "unreachable")  # type: ignore[attr-defined]
    await until(pilot, lambda: pilot.app.bus_state != "connecting")  # type: ignore[attr-defined]


def data_points(pilot: Pilot[None]) -> int:
    """The points the Data section's model has to chart."""
    screen = pilot.app.screen
    assert isinstance(screen, DataScreen)
    return screen.model.point_count()


def select_row(pilot: Pilot[None], table_id: str, key: str) -> None:
    table = pilot.app.screen.query_one(f"#{table_id}", LiveTable)
    table.move_cursor(row=table.get_row_index(key))


def preload_history(state_dir: Path) -> None:
    """Seven days of an environment sensor's temperature in the demo gateway's store,
    ending at FIXED_NOW: what the history view of the snapshots shows."""
    import math

    from services.contract import RecordObject
    from services.storage.store import Store

    store = Store(state_dir / "storage")
    end_ms = int(FIXED_NOW * 1000)
    for i in range(7 * 24 * 60):  # one value a minute
        t = end_ms - i * 60_000
        value = 21 + 3 * math.sin(i / 240) + (4 if i % 1440 == 300 else 0)
        store.append(RecordObject(ENV_SENSOR, "temperature", f"{value:.2f}", "°C", "float", t))
    store.flush()


async def discovered(pilot: Pilot[None]) -> None:
    await engine_settled(pilot)
    await devices_shown(pilot)
    await pilot.press("d")
    await until(pilot, lambda: rows(pilot, "discovered") == DISCOVERED)
    # Discovery opened ZigBee joining with a countdown: close it, so the screen is still.
    await pilot.press("j")
    await until(pilot, lambda: "closed" in str(table(pilot, "discovered").border_subtitle))
    # The cursor stays on the row it was on while devices appear, in whatever order
    # the radios found them: put it on a fixed one.
    select_row(pilot, "discovered", ENV_SENSOR)
    await settled(pilot)


async def paired(pilot: Pilot[None]) -> None:
    """Discover, then pair the first device (a BLE environment sensor) from the keyboard alone."""
    await discovered(pilot)
    select_row(pilot, "discovered", ENV_SENSOR)
    await pilot.press("p")
    await on_screen(pilot, "PairModal")
    await pilot.press("enter")  # take the proposed type
    await pilot.press("enter")  # keep the proposed name
    await until(pilot, lambda: rows(pilot, "registered") == 1)
    await settled(pilot)


async def paired_as_viewer(pilot: Pilot[None]) -> None:
    """The paired state as a viewer sees it: what the gateway said of the role (its
    check itself is tested in tests/test_access.py), the device's actions dimmed."""
    await paired(pilot)
    app = agile(pilot)
    await until(pilot, lambda: app.role == "admin")
    app.role = "viewer"
    table(pilot, "registered").focus()
    await settled(pilot)


async def pair_modal(pilot: Pilot[None]) -> None:
    await discovered(pilot)
    select_row(pilot, "discovered", SENSORTAG)  # two types fit it
    await pilot.press("p")
    await on_screen(pilot, "PairModal")
    await settled(pilot, waiting="devices-action")


async def firmware_modal(pilot: Pilot[None]) -> None:
    """A paired ZigBee sensor's firmware, as F shows it on the registered table."""
    await engine_settled(pilot)
    await pilot.press("j")  # ZigBee joining, until all five have joined (no toast later)
    await until(
        pilot, lambda: sum(k.startswith("zb") for k in list(table(pilot, "discovered").keys())) == 5
    )
    await pilot.press("j")  # closed again: no countdown in the bar
    await until(pilot, lambda: "closed" in str(table(pilot, "discovered").border_subtitle))
    select_row(pilot, "discovered", ZB_CLIMATE)
    await pilot.press("p")
    await on_screen(pilot, "PairModal")
    await pilot.press("enter", "enter")  # the proposed type and name
    await until(pilot, lambda: rows(pilot, "registered") == 1)
    table(pilot, "registered").focus()
    await settled(pilot)  # the toasts go while Devices is on top (a modal keeps them under)
    await pilot.press("F")
    await on_screen(pilot, "FirmwareModal")
    await until(pilot, lambda: "0x" in str(pilot.app.screen.query_one("#firmware-runs").render()))
    await settled(pilot, waiting="firmware-status")


async def devices_shown(pilot: Pilot[None]) -> None:
    """The Devices section has shown the gateway's state once (its ZigBee joining state
    is in the discovered table's subtitle)."""
    await until(pilot, lambda: "ZigBee" in str(table(pilot, "discovered").border_subtitle))


async def help_open(pilot: Pilot[None]) -> None:
    await engine_settled(pilot)
    await devices_shown(pilot)
    await pilot.press("question_mark")
    await settled(pilot)


async def data_streams(pilot: Pilot[None]) -> None:
    await paired(pilot)
    await pilot.press("3")
    await until(pilot, lambda: pilot.app.screen.query_one("#streams").option_count == 4)
    await settled(pilot)


def storage_full(disk: Path) -> Callable[[Pilot[None]], Awaitable[None]]:
    """The Data section while the disk under Storage (`disk`) is full: a paired sensor's
    temperature recorded, then the disk filled up (its ballast left at disk/ballast)."""

    async def state(pilot: Pilot[None]) -> None:
        await paired(pilot)
        await pilot.app.session.gateway.set_policy(ENV_SENSOR, "temperature", {})  # type: ignore[attr-defined]
        await pilot.press("3")
        await until(pilot, lambda: pilot.app.screen.query_one("#streams").option_count == 4)
        fill_up(disk)
        await until(pilot, lambda: bool(pilot.app.storage_problem))  # type: ignore[attr-defined]
        await settled(pilot)

    return state


async def charting(pilot: Pilot[None]) -> None:
    """The paired sensor's temperature on the live chart, its first point drawn."""
    await data_streams(pilot)
    await pilot.press("space")
    await until(pilot, lambda: data_points(pilot) >= 1)


async def data_history(pilot: Pilot[None]) -> None:
    """The temperature of the paired sensor over the last 24 h, from Storage."""
    await data_streams(pilot)
    await pilot.press("space", "h", "h", "h")  # chart it; live -> 5 min -> 1 h -> 24 h
    await until(pilot, lambda: data_points(pilot) > 100)
    await settled(pilot)


async def policy_modal(pilot: Pilot[None]) -> None:
    await data_streams(pilot)
    await pilot.press("R")
    await on_screen(pilot, "PolicyModal")
    await settled(pilot, waiting="data-policy")


async def containers(pilot: Pilot[None]) -> None:
    await engine_settled(pilot)
    await until(pilot, lambda: rows(pilot, "stack") == 3)
    await settled(pilot)


async def images(pilot: Pilot[None]) -> None:
    await engine_settled(pilot)
    await settled(pilot)


async def build_modal(pilot: Pilot[None]) -> None:
    await engine_settled(pilot)
    await pilot.press("b")
    await on_screen(pilot, "BuildModal")
    await settled(pilot)


async def build_failed(pilot: Pilot[None]) -> None:
    """A build started where no engine answers: the update service's error, as it said it."""
    await build_modal(pilot)
    await pilot.press("enter", "enter")
    await on_screen(pilot, "BuildScreen")
    screen = pilot.app.screen
    assert isinstance(screen, BuildScreen)
    await until(pilot, lambda: screen.model.outcome == "failed", timeout=60)
    await settled(pilot)


async def updates_pulling(pilot: Pilot[None]) -> None:
    """The updates screen mid-update. No stack or registry answers in the snapshot
    tests, so the check's result and the pull's progress are fixed data (the numbers of
    a real run: tests/images/test_tui_images.py drives these views on a real engine)."""
    from agile_tui.client.updates import UpdateCheck
    from services.contract import ServicePlan

    await engine_settled(pilot)
    await pilot.press("U")
    await on_screen(pilot, "UpdatesScreen")
    screen = pilot.app.screen
    assert isinstance(screen, UpdatesScreen)
    await until(pilot, lambda: not screen.model.busy)
    registry = "10.0.0.2:5000"

    def service(
        name: str, version: str, missing: int, total: int, size: int, delta: int = 0
    ) -> ServicePlan:
        release = 14 if missing else 9
        reference = f"{registry}/agile/{name}:multistage"
        return ServicePlan(
            name,
            version,
            reference,
            "0.1.0-4c0ffee9b2",
            delta or size,
            missing,
            total,
            missing == 0,
            method="delta" if delta else "pull",
            pull_bytes=size,
            delta_bytes=delta,
            seconds=(delta or size) * 8 / 9.6e6,
            link_bit_s=9.6e6,  # measured on the gateway's earlier updates
            link_source="measured",
            release=release,
            signed_by="3f9a0c1d2e7b",
            expires="2026-12-08T01:50:00+00:00",
            metadata_bytes=910,
        )

    check = UpdateCheck(
        registry,
        "multistage",
        [
            service("bus", "0.1.0-8265a4bf4d", 0, 3, 0),
            service("core", "0.1.0-8265a4bf4d", 0, 4, 0),
            service("storage", "0.1.0-8265a4bf4d", 1, 4, 496_740, delta=1_247),
            service("ble", "0.1.0-8265a4bf4d", 1, 4, 497_012),
            ServicePlan(
                "zigbee",
                "0.1.0-8265a4bf4d",
                problem="unsigned: no signed release of zigbee/multistage in the registry",
                short="unsigned",
                refused=True,
            ),
        ],
    )
    model = screen.model
    model.result = check
    model.say("ble: 497,012 bytes to download by pull (a pull: 497,012 bytes, 1 of 4 layers)")
    model.pulled("9c1e0a7d2f43", 262_144, 495_578)
    screen.show()
    select_row(pilot, "services", "ble")
    await settled(pilot)


async def no_bus(pilot: Pilot[None]) -> None:
    await engine_settled(pilot)
    await settled(pilot)


def paper_report(folder: Path) -> Path:
    """A report as `./dev bench paper --quick --versions 4` writes it (its own writers),
    with the figures of a run on the development machine; `folder`."""
    from buildhost import paper_rows
    from buildhost.paper_report import PAPER_MB, claims, render
    from buildhost.paper_rows import BuildTime, Fix, HistoryUpdate, Pull, Release, Results, Size

    sizes = {("storage", "multistage"): 186_813_347, ("storage", "squashed"): 186_790_112}
    pulls = [
        Pull("storage", st, 200.0, 1, v, kind, planned, planned + 4_210, predicted, took, change)
        for st, rows in {
            "multistage": [
                (1, "absolute", 68_404_311, 0.0, 2.86, ""),
                (2, "incremental", 751_203, 0.03, 0.15, "code"),
                (3, "incremental", 9_670_114, 0.52, 0.51, "dependency"),
                (4, "incremental", 28_630_907, 1.29, 1.27, "base"),
                (4, "absolute", 68_580_311, 2.90, 2.87, ""),
            ],
            "squashed": [
                (1, "absolute", 68_398_077, 2.87, 2.86, ""),
                (2, "incremental", 9_502_881, 0.50, 0.52, "code"),
                (3, "incremental", 9_670_114, 0.52, 0.51, "dependency"),
                (4, "incremental", 28_630_907, 1.28, 1.27, "base"),
                (4, "absolute", 68_580_077, 2.88, 2.87, ""),
            ],
        }.items()
        for v, kind, planned, predicted, took, change in rows
    ]
    releases = [
        Release(k, 200.0, 1, kind, 2, planned, planned + 8_300, predicted, took)
        for k, kind, planned, predicted, took in [
            (1, "absolute", 418_375_628, 17.04, 16.98),
            (2, "incremental", 149_336_296, 9.56, 6.21),
            (3, "incremental", 9_529_082, 0.70, 0.51),
            (4, "incremental", 794_805, 0.27, 0.16),
            (2, "absolute", 189_284_310, 8.29, 7.83),
            (3, "absolute", 69_573_973, 3.08, 3.03),
            (4, "absolute", 69_584_058, 3.04, 3.03),
        ]
    ]
    table1 = [Size(s, st, b, str(PAPER_MB[st])) for (s, st), b in sizes.items()]
    # The later parts, as the quick run measures them on the development machine.
    fixes = [
        Fix(
            "storage",
            "multistage",
            200.0,
            1,
            "delta",
            962,
            6_450,
            0.0,
            11.29,
            5.06,
            0.15,
            0.03,
            1.55,
            0.32,
            1.35,
            19.75,
        ),
    ]
    builds = [
        BuildTime("amd64", "multistage", bases, 1, step, 1, seconds)
        for bases, step, seconds in [
            ("own", "cold", 57.18),
            ("own", "code", 13.91),
            ("shared", "cold", 56.48),
            ("shared", "code", 14.20),
        ]
    ]
    history = [
        HistoryUpdate(
            "storage", "multistage", "a0ea73f3fbb1", 7_892, 1_110_188, 1_110_188, "delta", 7_892
        ),
    ]
    results = Results(table1, pulls, releases, fixes, builds, history)
    paper_rows.write(folder, results, render(results, claims(results), 20.0))
    return folder


async def fleet_answered(pilot: Pilot[None]) -> None:
    """Every gateway of the Fleet section has answered (or been found not there)."""
    await on_screen(pilot, "FleetScreen")
    screen = pilot.app.screen
    table = screen.query_one("#gateways")

    def drawn() -> bool:
        statuses = screen.statuses.values()  # type: ignore[attr-defined]
        return all(s.last_seen or s.short for s in statuses) and all(
            table.get_row(s.name)[1] != "…"  # type: ignore[attr-defined]
            for s in statuses
        )

    await until(pilot, drawn)
    await settled(pilot)


async def paper_report_open(pilot: Pilot[None]) -> None:
    await engine_settled(pilot)
    await pilot.press("r")
    await on_screen(pilot, "PaperReportScreen")
    await settled(pilot)


def paper_report_chart(nth: int) -> Callable[[Pilot[None]], Awaitable[None]]:
    """The report's nth chart: 1 Fig. 6 (after Fig. 5's one panel), 2 the build times,
    3 a fix's way to the gateway."""

    async def shown(pilot: Pilot[None]) -> None:
        await paper_report_open(pilot)
        await pilot.press(*["n"] * nth)
        await settled(pilot)

    return shown


AUDITED = [  # what people did on the demo gateway, as its services' audit logs keep it
    (
        "devicemanager",
        600,
        "alice",
        1001,
        "DeviceManager.Register",
        "['C0:FF:EE:00:00:01', 'org.eclipse.agail.protocol.BLE', 'AGILE Env 1', 'AVAILABLE'], ''",
        "ok",
    ),
    (
        "devicemanager",
        420,
        "bob",
        1002,
        "DeviceManager.Delete",
        "'bleC0FFEE000001'",
        "refused: needs admin",
    ),
    (
        "storage",
        300,
        "alice",
        1001,
        "Storage.SetPolicy",
        "'bleC0FFEE000001', 'temperature', {'retention_ms': 604800000}",
        "ok",
    ),
    (
        "updater",
        120,
        "bob",
        1002,
        "Updater.Update",
        "['storage'], 'evil.example:5000', 0.0",
        "refused: needs admin",
    ),
    ("runtime", 30, "root", 0, "Runtime.Restart", "'storage'", "ok"),
]


def preload_audit(state_dir: Path) -> None:
    """Audit logs with fixed entries (the gateway's own services' calls are not kept)."""
    folder = state_dir / "audit"
    folder.mkdir(parents=True, exist_ok=True)
    for service, ago, user, uid, call, arguments, outcome in AUDITED:
        line = [FIXED_NOW - ago, user, uid, service, call, arguments, outcome]
        with (folder / f"{service}.jsonl").open("a") as f:
            f.write(json.dumps(line) + "\n")


async def audit_open(pilot: Pilot[None]) -> None:
    await engine_settled(pilot)
    await until(pilot, lambda: agile(pilot).role == "admin")
    await pilot.press("A")
    await on_screen(pilot, "AuditScreen")
    await until(pilot, lambda: rows(pilot, "audit") == len(AUDITED))
    await settled(pilot, waiting="audit")
