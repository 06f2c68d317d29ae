"""Service options: declared once, typed, validated, and README's table made from them."""

import re
import shlex

import pytest

from services.catalog import CATALOG, options_of, options_table
from services.compose import environment, options_variable
from services.options import OptionError
from services.paths import DOCKERFILES, ROOT
from tests.helpers import agile_gateway


def test_readme_lists_every_option_as_the_code_declares_it() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- options -->\n(.*?)<!-- /options -->", readme, re.S)
    assert found, "README.md has no <!-- options --> table"
    assert found.group(1) == options_table(), "regenerate it: agile-gateway options"


def test_options_are_typed_with_their_defaults() -> None:
    opts = options_of("zigbee", {"channel": "20", "faults": "no"})
    assert opts["channel"] == 20 and opts["faults"] is False
    assert opts["request-timeout"] == 10.0 and opts["port"] is None
    assert options_of("sim-bluez", {"wanderer": "4,2"})["wanderer"] == (4.0, 2.0)


@pytest.mark.parametrize(
    "service, raw, says",
    [
        ("storage", {"flush-intervall": "1"}, "no option 'flush-intervall' (valid: folder,"),
        ("storage", {"flush-interval": "fast"}, "storage:flush-interval='fast' is not valid"),
        ("zigbee", {"radio": "cc2531"}, "not one of virtual, znp"),
        ("zigbee", {"faults": "maybe"}, "boolean"),
        ("devicemanager", {"x": "1"}, "valid: replay-records, replay-age"),
    ],
)
def test_a_wrong_option_is_an_error_naming_the_valid_ones(service, raw, says) -> None:
    with pytest.raises(OptionError, match=re.escape(says)):
        options_of(service, raw)


def test_every_service_reads_only_declared_options() -> None:
    for path in (ROOT / "services").rglob("service.py"):
        text = path.read_text()
        assert "options.get(" not in text, f"{path}: read options through options_of()"
    assert set(CATALOG) >= {"protocolmanager", "storage", "zigbee", "ble", "sim-bluez"}


@pytest.mark.parametrize("runtime", ["--native", "--containers"])
def test_up_refuses_a_misspelt_option_before_starting_anything(tmp_path, runtime) -> None:
    done = agile_gateway(
        "up", runtime, "--state-dir", str(tmp_path), "--option", "zigbee:chanel=11"
    )
    assert done.returncode != 0
    assert "zigbee has no option 'chanel' (valid: radio, port, channel," in done.stderr
    assert not (tmp_path / "runtime.json").exists()


def test_the_stack_hands_each_service_its_options_as_compose_reads_them(tmp_path) -> None:
    env = environment(tmp_path, "multistage", {"mqtt": ["host=broker.lan", "base-topic=a b"]})
    assert env["AGILE_MQTT_OPTIONS"] == "host=broker.lan 'base-topic=a b'"
    assert shlex.split(env["AGILE_MQTT_OPTIONS"]) == ["host=broker.lan", "base-topic=a b"]
    compose = (DOCKERFILES / "compose.yaml").read_text() + (
        DOCKERFILES / "compose.sim.yaml"
    ).read_text()
    for service in ("protocolmanager", "devicemanager", "storage", "ble", "zigbee", "mqtt"):
        assert f"AGILE_OPTIONS: ${{{options_variable(service)}:-}}" in compose, service
