"""The contract's limits keep every list reply on the bus: each reply, filled to the
limits with the largest strings they allow (4-byte UTF-8 characters where any printable
character is allowed), marshals to less than the bus's message limit. The services that
enforce them are tested in tests/test_bounds.py."""

import re

import pytest
from dbus_fast import Variant
from dbus_fast._private.marshaller import Marshaller

from services import contract as c
from services.paths import ROOT
from services.storage.policy import Policy

WIDE = "\U0001f600"  # printable, 4 bytes in UTF-8: the worst a name can be
PROTOCOL = c.protocol_bus_name("P" * 200)
ADDRESS = "A" * c.ADDRESS_MAX
DEVICE_ID = "d" * c.DEVICE_ID_MAX
COMPONENT = "c" * c.COMPONENT_ID_MAX
HEADER = 1024  # a reply's header (names, paths, serials) is far less than this


def definition(n: int) -> list[object]:
    dev_id = f"{n:04d}" + DEVICE_ID[4:]
    streams = tuple(
        c.DeviceComponent(f"{i:02d}" + COMPONENT[2:], WIDE * c.UNIT_MAX)
        for i in range(c.STREAMS_MAX)
    )
    return c.DeviceDefinition(
        dev_id,
        ADDRESS,
        WIDE * c.NAME_MAX,
        WIDE * c.NAME_MAX,
        PROTOCOL,
        c.device_path(dev_id),
        streams,
    ).to_wire()


def record(value: str = "v" * c.RECORD_VALUE_MAX) -> list[object]:
    return c.RecordObject(
        DEVICE_ID, COMPONENT, value, WIDE * c.UNIT_MAX, WIDE * c.UNIT_MAX, -(2**63)
    ).to_wire()


def stream_info() -> list[object]:
    info = {
        k: Variant(sig, 2**31)
        for k, sig in [
            ("count", "t"),
            ("first_ms", "x"),
            ("last_ms", "x"),
            ("bytes", "t"),
            ("segments", "u"),
        ]
    }
    return [DEVICE_ID, COMPONENT, info | {"encrypted": Variant("b", True)}]


REPLIES = {
    "DeviceManager.Devices": (
        "a" + c.DeviceDefinition.SIGNATURE,
        lambda: [definition(n) for n in range(c.DEVICES_MAX)],
    ),
    "DeviceManager.DevicesStatus": (
        "a{s(s)}",
        lambda: {f"{n:04d}{DEVICE_ID[4:]}": ["DISCONNECTED"] for n in range(c.DEVICES_MAX)},
    ),
    "ProtocolManager.Devices": (
        "a" + c.DeviceOverview.SIGNATURE,
        lambda: [
            [f"{n:04d}{ADDRESS[4:]}", PROTOCOL, WIDE * c.NAME_MAX, "UNAVAILABLE"]
            for n in range(c.DISCOVERED_MAX)
        ],
    ),
    "Storage.Policies": (
        "a(ssa{sv})",
        lambda: [
            [DEVICE_ID, f"{n:04d}{COMPONENT[4:]}", Policy(DEVICE_ID, COMPONENT).to_wire()]
            for n in range(c.POLICIES_MAX)
        ],
    ),
    "Storage.Streams": ("a(ssa{sv})", lambda: [stream_info()] * c.POLICIES_MAX),
    "Storage.Query": (
        "a" + c.RecordObject.SIGNATURE,
        lambda: [record()] * c.QUERY_POINTS_MAX,
    ),
    "Device.Replay": (
        "a" + c.SEQUENCED_SIGNATURE,
        lambda: [[record(), 2**64 - 1]] * c.REPLAY_BATCH,
    ),
    "Device.ReadAll": ("a" + c.RecordObject.SIGNATURE, lambda: [record()] * c.STREAMS_MAX),
    "Bridge.Bridged": (
        "a{sb}",
        lambda: (
            {f"{n:05d}{DEVICE_ID[5:]}": False for n in range(c.BRIDGE_OFF_MAX)}
            | {f"r{n:04d}{DEVICE_ID[5:]}": True for n in range(c.DEVICES_MAX)}
        ),
    ),
    "Bridge.BridgedStreams": (
        "a{sb}",
        lambda: {
            f"{DEVICE_ID}/{n:05d}{COMPONENT[5:]}": False
            for n in range(c.BRIDGE_OFF_MAX + c.DEVICES_MAX * c.STREAMS_MAX)
        },
    ),
}


@pytest.mark.parametrize("reply", sorted(REPLIES))
def test_a_list_reply_filled_to_the_limits_fits_the_bus(reply: str) -> None:
    signature, body = REPLIES[reply]
    size = len(Marshaller(signature, [body()]).marshall()) + HEADER
    print(f"{reply}: {size:,} bytes at the limits ({size / c.BUS_MESSAGE_MAX:.0%} of the bus's)")
    assert size < c.BUS_MESSAGE_MAX


def test_find_filled_to_the_limits_fits_the_bus() -> None:
    """Find's JSON as the device manager writes it (UTF-8, not \\u escapes)."""
    import json

    devices = [
        {
            "deviceId": d[0],
            "address": d[1],
            "name": d[2],
            "protocol": d[4],
            "path": d[5],
            "type": "t" * c.NAME_MAX,
            "streams": [{"id": s[0], "unit": s[1]} for s in d[6]],
        }
        for d in map(definition, range(c.DEVICES_MAX))
    ]
    text = json.dumps(devices, ensure_ascii=False)
    assert len(Marshaller("s", [text]).marshall()) + HEADER < c.BUS_MESSAGE_MAX


@pytest.mark.parametrize(
    "value, ok",
    [
        ("temperature", True),
        ("180d/2a37", True),
        ("1/temperature_measurement/measured_value", True),
        ("#", False),
        ("a/+/b", False),
        ("a//b", False),
        ("/a", False),
        ("a/", False),
        ("a\x00b", False),
        ("é", False),
        ("c" * c.COMPONENT_ID_MAX, True),
        ("c" * (c.COMPONENT_ID_MAX + 1), False),
    ],
)
def test_component_ids_are_mqtt_topic_levels(value: str, ok: bool) -> None:
    assert c.valid_component_id(value) is ok


def test_an_error_quoting_a_huge_argument_names_the_limit_not_the_argument() -> None:
    with pytest.raises(c.InvalidArgs) as raised:
        c.check_text("x" * 3_000_000, "a name", c.NAME_MAX)
    assert "1 to 128 printable characters" in raised.value.text
    assert "3,000,000 characters" in raised.value.text and len(raised.value.text) < 300


def test_readme_lists_every_limit_as_the_contract_declares_it() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- limits -->\n(.*?)\n<!-- /limits -->", readme, re.S)
    assert found, "README.md has no <!-- limits --> table"
    assert found.group(1) == c.limits_table(), "regenerate it: agile-gateway limits"
