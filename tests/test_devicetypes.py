"""Device types come from entry points; a broken plug-in is skipped, not fatal."""

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services import contract as c
from services.devicetypes import DeviceTypeRegistry
from services.devicetypes.dummy import decode_centi, encode_onoff
from tests.helpers import SWITCH, THERMOMETER


def test_installed_types_are_found_through_entry_points() -> None:
    registry = DeviceTypeRegistry.from_entry_points()
    assert {"dummy-thermometer", "dummy-switch"} <= set(registry.names())
    assert registry.matching(THERMOMETER) == ["dummy-thermometer"]
    assert registry.matching(SWITCH) == ["dummy-switch"]


def _plugin(tmp_path: Path, module_source: str, target: str) -> None:
    (tmp_path / "thirdparty_types.py").write_text(module_source)
    dist = tmp_path / "thirdparty_types-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-types\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[agile_gateway.device_types]\n{target}\n")


def test_third_party_plugin_adds_a_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plugin(
        tmp_path,
        """
from services.devicetypes import DeviceType, Component
class Lamp(DeviceType):
    name = "acme-lamp"
    protocols = ("Dummy",)
    components = (Component("level", "%", {"component": "level"}, lambda b: str(b[0])),)
    def matches(self, overview, info):
        return overview.name.startswith("ACME")
""",
        "acme-lamp = thirdparty_types:Lamp",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = DeviceTypeRegistry.from_entry_points()
    lamp = c.DeviceOverview("D0:00:00:00:00:09", c.protocol_bus_name("Dummy"), "ACME lamp")
    assert registry.matching(lamp) == ["acme-lamp"]


def test_broken_plugin_is_logged_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _plugin(
        tmp_path, "raise RuntimeError('broken on import')\n", "broken = thirdparty_types:Nothing"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("thirdparty_types", None)
    registry = DeviceTypeRegistry.from_entry_points()
    assert "dummy-thermometer" in registry.names()
    assert "broken" in caplog.text and "skipped" in caplog.text


def test_unknown_type_is_no_result() -> None:
    with pytest.raises(c.NoResult, match="no device type 'nope'"):
        DeviceTypeRegistry.from_entry_points().get("nope")


def test_decoders_reject_truncated_values() -> None:
    assert decode_centi(b"\x66\x08") == "21.50"
    assert decode_centi(b"\x9c\xff") == "-1.00"
    with pytest.raises(ValueError):
        decode_centi(b"\x01")
    with pytest.raises(c.InvalidArgs):
        encode_onoff("maybe")


# What Device._record turns into "undecodable value ... skipped"; anything else would
# escape the device manager's record path.
SKIPPED = (ValueError, IndexError, TypeError)
COMPONENTS = [
    (type_name, comp)
    for type_name in DeviceTypeRegistry.from_entry_points().names()
    for comp in DeviceTypeRegistry.from_entry_points().get(type_name).components
]


@pytest.mark.parametrize(
    "comp", [comp for _, comp in COMPONENTS], ids=[f"{t}/{x.id}" for t, x in COMPONENTS]
)
@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(raw=st.one_of(st.binary(max_size=8), st.binary(min_size=9, max_size=600)))
def test_every_decoder_takes_any_bytes_or_raises_what_is_skipped(comp, raw: bytes) -> None:
    """Fuzzed GATT and ZCL values, cut short or oversized: a value string or an error the
    device manager logs and skips, never another exception."""
    try:
        value = comp.decode(raw)
    except SKIPPED:
        return
    assert isinstance(value, str)
