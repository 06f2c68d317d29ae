"""The fleet as agile-tui sees it (fleet does the work, over SSH only): every
gateway's row, opening one as the sections' gateway, and staged rollouts."""

from agile_tui.client.errors import GatewayUnreachable
from agile_tui.client.session import Session
from fleet.gateways import Gateway, GatewayError, fleet
from fleet.rollout import STEP_COLUMNS, Rollout, State, Step, step_row
from fleet.status import COLUMNS, Fleet, GatewayStatus, Member, row
from fleet.tunnel import Tunnel, TunnelError
from services.catalog import IMAGES

SERVICE_IMAGES = sorted(IMAGES)  # what a rollout can take

__all__ = [
    "COLUMNS",
    "SERVICE_IMAGES",
    "STEP_COLUMNS",
    "Fleet",
    "Gateway",
    "GatewayError",
    "GatewayStatus",
    "Member",
    "Rollout",
    "State",
    "Step",
    "Tunnel",
    "fleet",
    "open_session",
    "row",
    "step_row",
]


def open_session(gateway: Gateway) -> tuple[Session, Tunnel]:
    """A session on the gateway through a tunnel of its own (blocking: call it from a
    thread); GatewayUnreachable says why not. The caller closes the tunnel."""
    tunnel = Tunnel(gateway)
    try:
        tunnel.open()
    except TunnelError as exc:
        raise GatewayUnreachable(str(exc)) from None
    session = Session(
        bus_address=tunnel.bus_address,
        docker_url=tunnel.engine_url,
        runtime="remote",
        hostname=gateway.name,
    )
    return session, tunnel
