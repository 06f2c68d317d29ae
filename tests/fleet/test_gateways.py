"""The fleet's list: agile-tui's config tables and --gateway, every mistake said."""

from pathlib import Path

import pytest

from fleet.config import load_config
from fleet.gateways import REMOTE_STATE_DIR, Gateway, GatewayError, fleet, from_argument


def test_gateways_come_from_the_config_file_and_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[gateways.kitchen]\nssh = "agile@10.0.0.7"\n'
        '[gateways.barn]\nssh = "agile@barn"\nport = 2222\nidentity = "~/.ssh/barn"\n'
        'state_dir = "/var/lib/agile"\nengine = "unix:///run/docker.sock"\n'
    )
    tables = load_config(config).gateways
    gateways = fleet(tables, str(config), ["root@10.0.0.9:2200", "ops@lab"])
    assert gateways == [
        Gateway("kitchen", "agile@10.0.0.7"),
        Gateway(
            "barn",
            "agile@barn",
            2222,
            Path("~/.ssh/barn").expanduser(),
            None,
            "/var/lib/agile",
            "unix:///run/docker.sock",
        ),
        Gateway("10.0.0.9-2200", "root@10.0.0.9", 2200),
        Gateway("lab", "ops@lab"),
    ]
    assert gateways[0].state_dir == REMOTE_STATE_DIR


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ('ssh = ""', 'ssh = "user@host" is required'),
        ('ssh = "-oProxyCommand=x"', 'ssh = "user@host" is required'),
        ('ssh = "a@b"\nport = 0', "port must be a number from 1 to 65535"),
        ('ssh = "a@b"\nport = "22"', "port must be a number from 1 to 65535"),
        ('ssh = "a@b"\nidentity = 7', "identity must be a file's path"),
        ('ssh = "a@b"\nhost = "x"', "unknown settings host"),
    ],
)
def test_a_wrong_gateway_entry_is_said_with_its_place(tmp_path: Path, table: str, said: str):
    config = tmp_path / "config.toml"
    config.write_text(f"[gateways.kitchen]\n{table}\n")
    with pytest.raises(GatewayError, match=f"config.toml: \\[gateways.kitchen\\]: {said}"):
        fleet(load_config(config).gateways, str(config), [])


def test_a_gateway_named_twice_or_a_bad_argument_is_said() -> None:
    with pytest.raises(GatewayError, match="given twice: lab"):
        fleet({"lab": {"ssh": "a@lab"}}, "config", ["ops@lab"])
    with pytest.raises(GatewayError, match="the port must be a number"):
        from_argument("ops@lab:ssh")
