"""agile-tui's settings: a TOML file, validated, with an environment variable for tests.

# ~/.config/agile-tui/config.toml
theme = "agile"              # any Textual theme name
refresh_seconds = 2.0        # polling period of live tables
[keys]                       # binding id = "key[,key...]"
"devices.discovery" = "D"
[gateways.kitchen]           # the fleet (also `agile-tui --gateway user@host`)
ssh = "agile@10.0.0.7"       # port, identity, known_hosts, state_dir, engine: optional
"""

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.errors import ConfigurationError

CONFIG_ENV = "AGILE_TUI_CONFIG"


class ConfigError(ConfigurationError):
    pass


@dataclass(frozen=True)
class Config:
    theme: str = "agile"
    refresh_seconds: float = 2.0
    keys: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    # [gateways.NAME] tables, as written: fleet.gateways reads them (with
    # `agile-gateway fleet` too, which must not import agile-tui's side of the fleet).
    gateways: dict[str, Any] = field(default_factory=dict)


def default_config_path() -> Path:
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "agile-tui" / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Load the config file; a missing default file is fine, a broken one is an error."""
    explicit = path is not None or CONFIG_ENV in os.environ
    path = path or default_config_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist") from None
        return Config()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = set(data) - {"theme", "refresh_seconds", "keys", "gateways"}
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    theme = data.get("theme", Config.theme)
    refresh = data.get("refresh_seconds", Config.refresh_seconds)
    keys = data.get("keys", {})
    if not isinstance(theme, str):
        raise ConfigError(f"{path}: theme must be a string")
    if not isinstance(refresh, int | float) or not 0.2 <= refresh <= 60:
        raise ConfigError(f"{path}: refresh_seconds must be a number from 0.2 to 60")
    if not isinstance(keys, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in keys.items()
    ):
        raise ConfigError(f'{path}: [keys] maps binding ids to key strings, e.g. "app.help" = "f1"')
    gateways = data.get("gateways", {})
    if not isinstance(gateways, dict):
        raise ConfigError(f"{path}: gateways must be tables: [gateways.NAME]")
    return Config(theme, float(refresh), dict(keys), path, gateways)
