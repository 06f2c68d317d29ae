"""The operator's role in the screens: an action the role lacks is dimmed in the footer
and says, in the command palette and the help, which role it needs."""

from typing import Any

from textual.binding import Binding
from textual.screen import Screen

from agile_tui.client.access import needs
from services.contract import Role


def role_of(app: object) -> Role | None:
    role = getattr(app, "role", "")
    return Role.named(role) if role else None


def lacking(screen: Screen[Any], action: str) -> Role | None:
    """The role `action` of `screen` needs that the user lacks (None: it may)."""
    for binding in getattr(screen, "BINDINGS", ()):
        if isinstance(binding, Binding) and binding.action == action and binding.id:
            return needs(role_of(screen.app), binding.id)
    return None
