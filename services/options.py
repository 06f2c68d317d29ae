"""Service options (`--option SERVICE:KEY=VALUE`): each declared once with its type,
default and meaning; what a service gets is checked and typed, and a misspelt or
ill-typed option is an error naming the valid ones."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.errors import ConfigurationError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class OptionError(ConfigurationError):
    pass


def boolean(raw: str) -> bool:
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ValueError(f"not one of {'/'.join(TRUE)} or {'/'.join(FALSE)}")


def seconds_pair(raw: str) -> tuple[float, float]:
    first, sep, second = raw.partition(",")
    if not sep:
        raise ValueError("not two numbers of seconds, e.g. 40,20")
    return float(first), float(second)


KIND_NAMES: dict[Callable[[str], Any], str] = {
    int: "integer",
    float: "number",
    str: "text",
    boolean: "boolean",
    seconds_pair: "seconds,seconds",
}


@dataclass(frozen=True)
class Option:
    name: str
    default: Any  # None: unset, the service decides (said in `help`)
    help: str
    kind: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> Any:
        if self.choices and raw not in self.choices:
            raise ValueError(f"not one of {', '.join(self.choices)}")
        return self.kind(raw)

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]


def parse_options(
    service: str, schema: tuple[Option, ...], raw: Mapping[str, str]
) -> dict[str, Any]:
    """Every option of the schema, typed: given ones parsed, the others at their default."""
    known = {o.name: o for o in schema}
    values = {o.name: o.default for o in schema}
    for key, text in raw.items():
        option = known.get(key)
        if option is None:
            valid = ", ".join(known) or "none"
            raise OptionError(f"{service} has no option {key!r} (valid: {valid})")
        try:
            values[key] = option.parse(text)
        except ValueError as exc:
            raise OptionError(
                f"{service}:{key}={text!r} is not valid ({option.kind_name}: {exc})"
            ) from None
    return values
