"""What screens and widgets use of agile-tui's application: the session, the engine, the
config, where the connections stand, the user's role, and the gateway's events. A base
of AgileApp of its own, so that screens know its type without importing the app (which
imports them)."""

from typing import TYPE_CHECKING

from textual.app import App
from textual.message_pump import MessagePump
from textual.reactive import reactive

from agile_tui.client.errors import ClientError, EngineError
from agile_tui.client.session import Session
from agile_tui.events import GatewayEvents
from fleet.config import Config

if TYPE_CHECKING:  # the Docker SDK and the fleet's modules stay out of the start-up
    from agile_tui.client.engine import Engine
    from agile_tui.client.fleet import Gateway, Tunnel


class GatewayApp(App[object]):
    bus_state: reactive[str] = reactive("connecting")
    engine_state: reactive[str] = reactive("connecting")
    bus_problem: reactive[str] = reactive("")
    engine_problem: reactive[str] = reactive("")
    storage_problem: reactive[str] = reactive("")
    # The role the gateway gives this user ("" until it says): actions it lacks are
    # dimmed, and say which role they need.
    role: reactive[str] = reactive("")

    def __init__(self, session: Session, config: Config, gateways: "list[Gateway]") -> None:
        super().__init__()
        self.session = session
        self.home = session  # the gateway agile-tui started on
        self.gateways = gateways
        self.config = config
        self.engine: Engine | None = None  # once reachable
        self.events = GatewayEvents(self)

    def engine_or_error(self) -> "Engine":
        if self.engine is None:
            raise EngineError(f"the Docker engine is {self.engine_state}")
        return self.engine

    async def open_gateway(self, session: Session, tunnel: "Tunnel | None") -> None:
        raise NotImplementedError

    def bus_failed(self, exc: ClientError) -> None:
        raise NotImplementedError


def gateway_app(node: MessagePump) -> GatewayApp:
    """`node.app`, typed: agile-tui's widgets run in no other app."""
    app = node.app
    assert isinstance(app, GatewayApp), app
    return app
