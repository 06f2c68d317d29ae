"""The contract's records, names and conversions match AGILE's wire form."""

import pytest
from dbus_fast.signature import get_signature_tree

from services import contract as c


def test_device_id_is_lowercase_protocol_and_address_without_colons() -> None:
    assert c.device_id("org.eclipse.agail.protocol.BLE", "5C:31:3E:08:59:DD") == "ble5C313E0859DD"
    assert c.device_id("ZB", "00:12:4b:00:01:02:03:04") == "zb00124b0001020304"


@pytest.mark.parametrize(
    "record, signature",
    [
        (c.DeviceOverview("AA:BB", "org.eclipse.agail.protocol.BLE", "n", "AVAILABLE"), "(ssss)"),
        (c.DeviceComponent("temperature", "°C"), "(ss)"),
        (
            c.DeviceDefinition(
                "bleAABB",
                "AA:BB",
                "n",
                "d",
                "org.eclipse.agail.protocol.BLE",
                "/org/eclipse/agail/Device/bleAABB",
                (c.DeviceComponent("t", "°C"),),
            ),
            "(ssssssa(ss))",
        ),
        (c.RecordObject("bleAABB", "t", "21.5", "°C", "float", 1700000000000), "(sssssx)"),
        (
            c.ProtocolOverview(
                "BLE", "Bluetooth LE", "org.eclipse.agail.protocol.BLE", "Available"
            ),
            "(ssss)",
        ),
        (c.DiscoveryStatus("org.eclipse.agail.protocol.BLE", "RUNNING"), "(ss)"),
    ],
)
def test_record_round_trips_through_its_agile_signature(record, signature) -> None:
    assert signature == record.SIGNATURE
    wire = record.to_wire()
    get_signature_tree(signature).verify([wire])  # raises if the wire form does not fit
    assert type(record).from_wire(wire) == record


@pytest.mark.parametrize("bad", [None, [], ["a", "b", "c"], ["a", "b", "c", 4], "abcd"])
def test_malformed_overview_is_invalid_args(bad) -> None:
    with pytest.raises(c.InvalidArgs):
        c.DeviceOverview.from_wire(bad)


def test_error_names_are_agiles() -> None:
    assert c.NoResult("x").type == "org.eclipse.agail.exception.AgileNoResultException"
    assert c.DeviceNotFound("x").type == "org.eclipse.agail.exception.AgileDeviceNotFoundException"
    assert c.InvalidArgs("x").type == "org.freedesktop.DBus.Error.InvalidArgs"


def test_device_ids_are_restricted_to_object_path_characters() -> None:
    assert c.valid_device_id("ble5C313E0859DD")
    assert not c.valid_device_id("ble/../x")
    assert not c.valid_device_id("")
