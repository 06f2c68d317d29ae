"""Stateful fuzzing of a native gateway (real processes, a real broker): a hypothesis
state machine registers, renames and deletes devices, sets and deletes recording
policies, bridges and unbridges devices and streams, follows, subscribes, writes and
restarts services, with generated arguments (huge, empty, unicode, control characters,
topic wildcards, extreme numbers). What one call stores must never break a later one:
after every step every list method answers, agile-tui's Devices and Data refreshes
succeed, and no service has crashed; after each run the bridge still publishes a live
record to mosquitto.

A fixed seed (derandomize) and 300 steps in CI; `AGILE_FUZZ_STEPS=N` for a longer run.
Each list call's time is reported, not asserted (a test does not time a loaded machine).
"""

import asyncio
import contextlib
import functools
import json
import os
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dbus_fast import DBusError, Variant
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from agile_tui.client.gateway import GatewayClient
from services import contract as c
from services.bus import call, connect
from testkit.broker import Subscriber, running_broker
from testkit.gateway import Gateway
from tests.helpers import THERMOMETER

T = TypeVar("T")
STEPS = int(os.environ.get("AGILE_FUZZ_STEPS", "300"))
STEPS_PER_RUN = 30
CANARY = THERMOMETER  # registered before, never a rule's target: its records must flow
DUMMY = c.protocol_bus_name("Dummy")
# Answers that say "no" clearly; anything else (no reply, an unhandled exception) is a bug.
CLEAR_NO = {
    c.INVALID_ARGS_ERROR,
    c.NO_RESULT_ERROR,
    c.DEVICE_NOT_FOUND_ERROR,
    c.PROTOCOL_UNAVAILABLE_ERROR,
    c.STORAGE_ERROR,
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownMethod",
}
SERVICES = ["devicemanager", "storage", "mqtt", "protocolmanager", "dummy"]

# D-Bus strings are UTF-8 without NUL; everything else a client may send.
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=60)
WILD = st.sampled_from(["#", "+", "a/#", "+/b", "/", "a//b", "temperature/", "\x01\x1f", "é" * 200])
HUGE = st.sampled_from(
    ["x" * 300, "y" * 70_000, "\U0001f600" * 129, "z" * 1_200_000]
)  # three fit one message
STRINGS = st.one_of(TEXT, WILD, HUGE, st.just(""))
COMPONENTS = st.one_of(st.sampled_from(["temperature", "humidity", "state"]), WILD, STRINGS)
VALID_ADDRESS = st.integers(0, 0xFF).map(lambda n: f"E0:00:00:00:00:{n:02X}")
ADDRESSES = st.one_of(VALID_ADDRESS, VALID_ADDRESS, VALID_ADDRESS, STRINGS)  # mostly devices
NUMBERS = st.one_of(
    st.sampled_from([-(2**63), -1, 0, 1, 2**63 - 1]), st.integers(-(2**63), 2**63 - 1)
)
DURATIONS = st.one_of(
    NUMBERS.map(lambda n: Variant("x", n)),
    st.sampled_from(["99999999999999999999d", "9" * 30, "7d", "0", "-5s", "", "1e9h"]).map(
        lambda s: Variant("s", s)
    ),
    st.booleans().map(lambda b: Variant("b", b)),
)
POLICY = st.dictionaries(
    st.sampled_from(["retention_ms", "interval_ms", "record", "encrypt", "nope"]),
    st.one_of(DURATIONS, st.booleans().map(lambda b: Variant("b", b))),
    max_size=4,
)


class Stats:
    steps = 0
    calls: Counter[str] = Counter()  # answer kinds
    rules: Counter[str] = Counter()  # calls by method
    log: list[str] = []  # the run's steps so far, to say what led to a failure
    failures: list[str] = []
    slowest: tuple[float, str] = (0.0, "")


class Bus:
    """A bus client on an event loop of its own, for a state machine's sync rules."""

    def __init__(self, address: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.bus = self.run(connect(address))
        self.tui = GatewayClient(address)
        self.run(self.tui.connect())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def call(self, dest: str, path: str, iface: str, member: str, sig: str = "", *body: Any) -> str:
        """The answer, or the error's name; a bug fails the test."""
        Stats.rules[member] += 1
        try:
            self.run(call(self.bus, dest, path, iface, member, sig, list(body), timeout=30))
        except DBusError as exc:
            assert exc.type in CLEAR_NO, f"{member}{sig}: {exc.type}: {exc.text[:300]}"
            Stats.calls[exc.type.rsplit(".", 1)[-1]] += 1
            return exc.type
        Stats.calls["ok"] += 1
        return ""

    def close(self) -> None:
        self.tui.close()
        self.bus.disconnect()
        with contextlib.suppress(Exception):  # how it ended: it ended, on a loop still open
            self.run(self.bus.wait_for_disconnect())
        self.loop.close()


def recorded(step):  # type: ignore[no-untyped-def]
    """A rule or invariant that never raises into hypothesis (which would replay the run,
    and the gateway's state makes a replay another run): a failure is kept with the steps
    that led to it, and the test fails with them once the machine is done."""

    @functools.wraps(step)
    def run(self, **kwargs):  # type: ignore[no-untyped-def]
        Stats.log.append(
            f"{step.__name__}({', '.join(f'{k}={v!r:.80}' for k, v in kwargs.items())})"
        )
        if Stats.failures:
            return kwargs.get("address") and c.device_id(DUMMY, kwargs["address"])
        try:
            return step(self, **kwargs)
        except Exception as exc:
            Stats.failures.append(
                f"{type(exc).__name__}: {exc}"[:2000]
                + "\nafter:\n  "
                + "\n  ".join(Stats.log[-30:])
            )
            return kwargs.get("address") and c.device_id(DUMMY, kwargs["address"])

    return run


class GatewayMachine(RuleBasedStateMachine):
    """Each run starts from what the runs before it stored: saved effects accumulate."""

    gateway: Gateway
    bus: Bus
    sub: Subscriber

    devices = Bundle("devices")

    # -- calls --

    def dm(self, member: str, sig: str = "", *body: Any) -> str:
        return self.bus.call(
            c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, member, sig, *body
        )

    def device(self, dev_id: str, member: str, sig: str = "", *body: Any) -> str:
        if not c.valid_device_id(dev_id):
            return ""
        return self.bus.call(
            c.DEVICE_NAME, c.device_path(dev_id), c.DEVICE_IFACE, member, sig, *body
        )

    def storage(self, member: str, sig: str = "", *body: Any) -> str:
        return self.bus.call(c.STORAGE_NAME, c.STORAGE_PATH, c.STORAGE_IFACE, member, sig, *body)

    def bridge(self, member: str, sig: str = "", *body: Any) -> str:
        return self.bus.call(c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, member, sig, *body)

    # -- rules --

    @rule(
        target=devices,
        address=ADDRESSES,
        name=st.one_of(HUGE, STRINGS),
        type_name=st.sampled_from(["dummy-thermometer", "dummy-switch", "", "nope"]),
    )
    @recorded
    def register(self, address: str, name: str, type_name: str) -> str:
        self.dm("Register", "(ssss)s", [address, DUMMY, name, "AVAILABLE"], type_name)
        return c.device_id(DUMMY, address)

    @rule(
        device=devices, name=st.one_of(HUGE, STRINGS), description=st.one_of(st.just(""), STRINGS)
    )
    def update(self, device: str, name: str, description: str) -> None:
        self.dm("Update", "s(ssssssa(ss))", device, ["", "", name, description, "", "", []])

    @rule(device=devices)
    @recorded
    def delete(self, device: str) -> None:
        self.dm("Delete", "s", device)

    @rule(device=st.one_of(devices, devices, STRINGS), component=COMPONENTS, changes=POLICY)
    @recorded
    def set_policy(self, device: str, component: str, changes: dict[str, Variant]) -> None:
        self.storage("SetPolicy", "ssa{sv}", device, component, changes)

    @rule(device=devices, component=COMPONENTS)
    @recorded
    def delete_policy(self, device: str, component: str) -> None:
        self.storage("DeletePolicy", "ss", device, component)

    @rule(device=st.one_of(devices, STRINGS), on=st.booleans())
    @recorded
    def set_bridged(self, device: str, on: bool) -> None:
        self.bridge("SetBridged", "sb", device, on)

    @rule(device=st.one_of(devices, devices, STRINGS), component=COMPONENTS, on=st.booleans())
    @recorded
    def set_stream_bridged(self, device: str, component: str, on: bool) -> None:
        self.bridge("SetStreamBridged", "ssb", device, component, on)

    @rule(
        device=devices, component=COMPONENTS, consumer=st.one_of(STRINGS, st.just(c.STORAGE_NAME))
    )
    def follow(self, device: str, component: str, consumer: str) -> None:
        self.device(device, "Follow", "ss", component, consumer)
        self.device(device, "Unfollow", "ss", component, consumer)

    @rule(device=devices, component=COMPONENTS, unsubscribe=st.booleans())
    @recorded
    def subscribe(self, device: str, component: str, unsubscribe: bool) -> None:
        self.device(device, "Unsubscribe" if unsubscribe else "Subscribe", "s", component)

    @rule(
        device=devices,
        component=COMPONENTS,
        value=st.one_of(STRINGS, st.sampled_from(["on", "off"])),
    )
    def write(self, device: str, component: str, value: str) -> None:
        self.device(device, "Write", "ss", component, value)

    @rule(service=st.sampled_from(SERVICES))
    @recorded
    def restart(self, service: str) -> None:
        """Whatever was stored is read back by a fresh process."""
        before = self.gateway.services()[service]["pid"]
        self.bus.call(c.RUNTIME_NAME, c.RUNTIME_PATH, c.RUNTIME_IFACE, "Restart", "s", service)
        self.gateway.wait_for_names(60, service, before)

    # -- invariants --

    @invariant()
    @recorded
    def every_list_answers_and_nothing_crashed(self) -> None:
        Stats.steps += 1
        lists = [
            (c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, "Devices"),
            (c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, "Find"),
            (c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, "DevicesStatus"),
            (c.PROTOCOL_MANAGER_NAME, c.PROTOCOL_MANAGER_PATH, c.PROTOCOL_MANAGER_IFACE, "Devices"),
            (
                c.PROTOCOL_MANAGER_NAME,
                c.PROTOCOL_MANAGER_PATH,
                c.PROTOCOL_MANAGER_IFACE,
                "DevicesInfo",
            ),
            (c.STORAGE_NAME, c.STORAGE_PATH, c.STORAGE_IFACE, "Policies"),
            (c.STORAGE_NAME, c.STORAGE_PATH, c.STORAGE_IFACE, "Streams"),
            (c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, "Bridged"),
            (c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, "BridgedStreams"),
            (c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, "Status"),
        ]
        for dest, path, iface, member in lists:
            began = time.monotonic()
            self.bus.run(call(self.bus.bus, dest, path, iface, member, timeout=30))
            took = time.monotonic() - began
            Stats.slowest = max(Stats.slowest, (took, f"{iface.rsplit('.', 1)[-1]}.{member}"))
        tui = self.bus.tui
        for refresh in (
            tui.discovered,
            tui.all_devices_info,
            tui.devices_status,
            tui.discovery_status,
            tui.registered,
            tui.policies,
            tui.storage_stats,
            tui.bridge_status,
            tui.bridged,
        ):
            self.bus.run(refresh())
        for dev_id, component in list(self.bus.run(tui.policies()))[:3]:
            self.bus.run(tui.history(dev_id, component, 0, 2**62, 500))
        restarts = {n: s["restarts"] for n, s in self.gateway.services().items() if s["restarts"]}
        assert not restarts, f"crashed and restarted: {restarts}"

    def teardown(self) -> None:
        Stats.log.append("--- a new run")
        self.bridge_publishes()

    @recorded
    def bridge_publishes(self) -> None:
        """The bridge still publishes: a new record of the canary reaches the broker."""
        topic = f"{self.gateway.base}/{CANARY.device_id}/temperature"
        seen = sum(1 for t, _ in self.sub.messages() if t == topic)
        deadline = time.monotonic() + 60
        while sum(1 for t, _ in self.sub.messages() if t == topic) <= seen:
            assert time.monotonic() < deadline, "the bridge published no live record"
            time.sleep(0.05)
        (status,) = self.bus.run(
            call(self.bus.bus, c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, "Status", timeout=30)
        )
        assert status["connected"].value, status["error"].value


class FuzzedGateway(Gateway):
    base = "agile/fuzz"

    def services(self) -> dict[str, dict]:
        return json.loads((self.state_dir / "runtime.json").read_text())["services"]

    def wait_for_names(self, timeout_s: float, restarted: str, old_pid: int) -> None:
        """Until `restarted` runs as a new process and every name is owned again."""
        deadline = time.monotonic() + timeout_s
        while (s := self.services()[restarted])["state"] != "running" or s["pid"] == old_pid:
            assert time.monotonic() < deadline, f"not running again: {self.services()}"
            time.sleep(0.05)
        bus = GatewayMachine.bus
        wanted = {c.DEVICE_MANAGER_NAME, c.STORAGE_NAME, c.BRIDGE_NAME, c.PROTOCOL_MANAGER_NAME}
        wanted.add(DUMMY)
        while True:
            (names,) = bus.run(
                call(
                    bus.bus,
                    "org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "ListNames",
                )
            )
            if wanted <= set(names):
                return
            assert time.monotonic() < deadline, f"names missing: {wanted - set(names)}"
            time.sleep(0.05)


@pytest.mark.timeout(3600)
def test_what_a_call_stores_never_breaks_a_later_call(tmp_path: Path) -> None:
    with running_broker(tmp_path / "broker") as broker:
        options = [f"mqtt:{k}={v}" for k, v in broker.options().items()]
        options += [f"mqtt:base-topic={FuzzedGateway.base}", "mqtt:refresh-interval=0.5"]
        options += ["dummy:record-interval=0.2"]
        gateway = FuzzedGateway(tmp_path / "gw", options)
        bus = Bus(gateway.address)
        sub = Subscriber(broker, f"{FuzzedGateway.base}/#")
        try:
            assert (
                bus.call(
                    c.DEVICE_MANAGER_NAME,
                    c.DEVICE_MANAGER_PATH,
                    c.DEVICE_MANAGER_IFACE,
                    "Register",
                    "(ssss)s",
                    CANARY.to_wire(),
                    "",
                )
                == ""
            )
            GatewayMachine.gateway, GatewayMachine.bus, GatewayMachine.sub = gateway, bus, sub
            Stats.steps, Stats.log, Stats.failures = 0, [], []
            runs = -(-STEPS // STEPS_PER_RUN)
            machine = settings(
                max_examples=runs,
                stateful_step_count=STEPS_PER_RUN,
                derandomize=True,
                database=None,
                # No shrinking: the gateway's state outlives a run, so a replayed run is
                # not the same run; a failure is reported as it happened.
                phases=[Phase.explicit, Phase.generate],
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )(GatewayMachine)
            machine.TestCase().runTest()
            assert not Stats.failures, "\n\n".join(Stats.failures)
            print(
                f"{Stats.steps} steps in {runs} runs; calls {dict(Stats.rules.most_common())}; "
                f"answers {dict(Stats.calls.most_common())}; "
                f"slowest list call {Stats.slowest[0]:.3f} s ({Stats.slowest[1]})"
            )
            assert Stats.steps >= STEPS
        finally:
            sub.stop()
            bus.close()
            gateway.stop()
