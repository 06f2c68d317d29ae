"""Every method of every service called with generated arguments (hypothesis): right and
wrong signatures, empty and 4 MB strings, unknown ids, negative and huge numbers,
NaN and infinities, deep arrays. Each call is answered — by a result or a D-Bus error —
and no service crashes (the supervisor restarts none). Calls slower than 1 s are
reported, not asserted: a test does not time a loaded machine.

A fixed seed in CI (derandomize): 10,000 calls per service; `AGILE_FUZZ_CALLS=N` sets
another number."""

import asyncio
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from dbus_fast import Message, SignatureTree, Variant
from dbus_fast.signature import SignatureType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services import contract as c
from services.bus import connect
from tests.helpers import THERMOMETER

CALLS = int(os.environ.get("AGILE_FUZZ_CALLS", "10000"))  # per service
T = TypeVar("T")
WINDOW = 20  # calls in flight at any time: a client is not polite either
ANSWER_S = 1.0
RADIO_S = 60.0  # how long a radio method may take, twenty at once
# Methods whose contract is to wait on a radio or a device (a BLE scan for an address
# takes up to 5 s, a connection up to 10 s): answered within their own timeouts.
RADIO_WAITS = {"Connect", "Read", "ReadAll", "Write", "Execute", "Subscribe", "Discover"}
# Errors that mean no answer: the service did not reply, or is gone.
NO_ANSWER = {
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Timeout",
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
}
# What dbus-fast answers for an exception the method did not turn into an error: a bug.
UNHANDLED = "com.dubstepdish.dbus.next.ServiceError"
SKIP_IFACES = ("org.freedesktop.DBus.",)

THERMO = THERMOMETER.device_id
WORDS = [
    "",
    THERMO,
    "dummyD00000000003",
    "temperature",
    "humidity",
    "state",
    "on",
    "Dummy",
    "BLE",
    "ZB",
    c.protocol_bus_name("Dummy"),
    "D0:00:00:00:00:01",
    "C0:FF:EE:00:00:01",
    "00:12:4b:00:1c:00:00:02",
    "../../etc/passwd",
    "é" * 3,
    "7d",
    "{}",
    '{"devices": ["nope"]}',
]
HUGE = "x" * 4_000_000  # the bus carries messages up to 4 MiB, header included
# D-Bus strings are UTF-8 without NUL: the bus daemon drops a client that sends others.
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=40)


def strategy(t: SignatureType, depth: int = 0) -> st.SearchStrategy[object]:
    """Values of D-Bus type `t`: edge cases first among random ones."""
    code = t.token
    if code == "y":
        return st.integers(0, 255)
    if code == "b":
        return st.booleans()
    if code in "nqiuxt":
        bits = {"n": 16, "q": 16, "i": 32, "u": 32, "x": 64, "t": 64}[code]
        signed = code in "nix"
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        return st.one_of(st.sampled_from([lo, hi, 0, 1]), st.integers(lo, hi))
    if code == "d":
        return st.floats(allow_nan=True, allow_infinity=True)
    if code == "s":
        return st.one_of(st.sampled_from(WORDS), TEXT, st.just(HUGE))
    if code == "o":
        return st.sampled_from(["/", "/org/eclipse/agail/Device/" + THERMO, "/a/b_c"])
    if code == "g":
        return st.sampled_from(["", "s", "a{sv}", "(ssss)"])
    if code == "v":
        inner = st.sampled_from(["s", "x", "b", "d", "as", "a{sv}"])
        return inner.flatmap(
            lambda sig: strategy(SignatureTree(sig).types[0], depth + 1).map(
                lambda v, sig=sig: Variant(sig, v)
            )
        )
    if code == "a":
        size = 0 if depth > 3 else 6
        element = t.children[0]
        if element.token == "y":
            return st.binary(max_size=64)
        if element.token == "{":
            key, value = element.children
            return st.dictionaries(
                strategy(key, depth + 1), strategy(value, depth + 1), max_size=size
            )
        return st.lists(strategy(element, depth + 1), max_size=size)
    if code == "(":
        return st.tuples(*(strategy(child, depth + 1) for child in t.children)).map(list)
    raise ValueError(f"no strategy for {code}")


def arguments(signature: str) -> st.SearchStrategy[list[object]]:
    types = SignatureTree(signature).types
    return st.tuples(*(strategy(t) for t in types)).map(list)


def drawn(strategy: st.SearchStrategy[T], n: int) -> list[T]:
    """`n` examples of `strategy` as hypothesis draws them (edge cases among them), the
    same on every run."""
    out: list[T] = []

    @settings(
        max_examples=n,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        out.append(example)

    collect()
    return out


def _size(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Variant):
        return _size(value.value)
    if isinstance(value, dict):
        return sum(_size(k) + _size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(_size(v) for v in value)
    return 8


WRONG = ["", "s", "ss", "x", "as", "a{sv}", "(ssss)", "sss", "b", "d", "ay", "aas", "v"]


@dataclass
class Target:
    name: str
    path: str
    methods: list[tuple[str, str, str]]  # (interface, member, in signature)


@dataclass
class Tally:
    calls: int = 0
    results: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    slow: list[tuple[str, float]] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    unhandled: list[str] = field(default_factory=list)


class Client:
    """A bus connection on an event loop of its own, for hypothesis's synchronous tests."""

    def __init__(self, address: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.bus = self.run(connect(address))

    def run(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _call(self, msg: Message, timeout: float):  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(self.bus.call(msg), timeout)

    def call(self, msg: Message, timeout: float) -> Message | None:
        try:
            return self.run(self._call(msg, timeout))
        except TimeoutError:
            return None

    async def _timed(self, msg: Message, timeout: float) -> tuple[Message | None, float]:
        began = time.monotonic()
        try:
            reply = await self._call(msg, RADIO_S if msg.member in RADIO_WAITS else timeout)
        except TimeoutError:
            reply = None
        return reply, time.monotonic() - began

    def call_all(self, messages: list[Message], timeout: float, window: int):  # type: ignore[no-untyped-def]
        """Every message sent, `window` of them in flight at any time (a slow call holds
        one place, not a whole batch): each one's reply (None: none in time) and time."""
        places = asyncio.Semaphore(window)

        async def in_window(msg: Message):  # type: ignore[no-untyped-def]
            async with places:
                return await self._timed(msg, timeout)

        async def all_of_them():  # type: ignore[no-untyped-def]
            return await asyncio.gather(*map(in_window, messages))

        return self.run(all_of_them())

    def introspect(self, name: str, path: str) -> list[tuple[str, str, str]]:
        node = self.run(self.bus.introspect(name, path))
        return [
            (iface.name, m.name, "".join(a.signature for a in m.in_args))
            for iface in node.interfaces
            if not iface.name.startswith(SKIP_IFACES)
            for m in iface.methods
        ]

    def close(self) -> None:
        self.bus.disconnect()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):  # type: ignore[no-untyped-def]
    """One native gateway (real processes) for every service's fuzzing, with a
    registered thermometer so that the Device methods have one to work on."""
    from testkit.gateway import Gateway

    gw = Gateway(tmp_path_factory.mktemp("fuzz") / "gw", ["dummy:record-interval=0.5"])
    client = Client(gw.address)
    yield gw, client
    client.close()
    gw.stop()


TARGETS = {
    "protocolmanager": (c.PROTOCOL_MANAGER_NAME, c.PROTOCOL_MANAGER_PATH),
    "devicemanager": (c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH),
    "device": (c.DEVICE_NAME, c.device_path(THERMO)),
    "dummy": (c.protocol_bus_name("Dummy"), c.protocol_path("Dummy")),
    "ble": (c.protocol_bus_name("BLE"), c.protocol_path("BLE")),
    "zigbee": (c.protocol_bus_name("ZB"), c.protocol_path("ZB")),
    "storage": (c.STORAGE_NAME, c.STORAGE_PATH),
    "mqtt": (c.BRIDGE_NAME, c.BRIDGE_PATH),
}


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("service", list(TARGETS))
def test_generated_calls_are_all_answered_and_crash_nothing(fuzzed, service: str) -> None:
    gw, client = fuzzed
    # The thermometer the Device methods work on (an earlier service's fuzzing may
    # have deleted it: DeviceManager.Delete is fuzzed too).
    register = Message(
        destination=c.DEVICE_MANAGER_NAME,
        path=c.DEVICE_MANAGER_PATH,
        interface=c.DEVICE_MANAGER_IFACE,
        member="Register",
        signature="(ssss)s",
        body=[THERMOMETER.to_wire(), ""],
    )
    assert client.call(register, 30) is not None
    name, path = TARGETS[service]
    methods = client.introspect(name, path)
    assert methods, f"{name} {path} exports no methods"
    tally = Tally()

    call = st.sampled_from(methods).flatmap(
        lambda m: st.one_of(st.just(m[2]), st.sampled_from(WRONG)).flatmap(
            lambda sig, m=m: arguments(sig).map(lambda body, sig=sig: (m[0], m[1], sig, body))
        )
    )
    fits = call.filter(lambda c: _size(c[3]) < len(HUGE) + 100_000)  # one bus message
    # Drawn WINDOW at a time: hypothesis gives each example once, and single calls repeat.
    chosen = [
        c
        for some in drawn(st.lists(fits, min_size=WINDOW, max_size=WINDOW), CALLS // WINDOW)
        for c in some
    ]
    messages = [
        Message(
            destination=name,
            path=path,
            interface=iface,
            member=member,
            signature=signature,
            body=body,
        )
        for iface, member, signature, body in chosen
    ]
    for (_, member, signature, body), (reply, took) in zip(
        chosen, client.call_all(messages, 15, WINDOW), strict=True
    ):
        tally.calls += 1
        what = f"{member}({signature})"
        if reply is None:
            tally.unanswered.append(f"{what} {tuple(body)!r:.80}")
            continue
        if reply.error_name:
            tally.errors[reply.error_name] += 1
            if reply.error_name in NO_ANSWER:
                tally.unanswered.append(f"{what}: {reply.error_name}")
            if reply.error_name == UNHANDLED:
                tally.unhandled.append(f"{member}{tuple(body)!r:.200}: {reply.body}")
        else:
            tally.results += 1
        if took > ANSWER_S and member not in RADIO_WAITS:
            tally.slow.append((what, round(took, 2)))
    status = json.loads((gw.state_dir / "runtime.json").read_text())
    restarts = {n: s["restarts"] for n, s in status["services"].items() if s["restarts"]}
    print(
        f"{service}: {tally.calls} calls, {tally.results} results, "
        f"errors {dict(tally.errors.most_common(4))}, "
        f"over {ANSWER_S:g} s (not radio waits; reported, not asserted): {tally.slow[:5]}"
    )
    assert tally.calls >= CALLS
    assert not tally.unanswered, tally.unanswered[:10]
    assert not tally.unhandled, tally.unhandled[:10]
    assert not restarts, f"crashed and restarted: {restarts}"
