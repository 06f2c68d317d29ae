"""What agile-tui's client could not get or do: the gateway's one error root
(services.errors), which the screens catch as ClientError, its text meant for the
operator as it is. The client translates what its libraries raise (D-Bus errors, a
dropped connection, the Docker SDK's and its HTTP stack's errors) into these, for reads
as well as actions."""

from services.errors import AgileError as ClientError
from services.errors import BusError, EngineError, EngineUnreachable

__all__ = ["BusError", "ClientError", "EngineError", "EngineUnreachable", "GatewayUnreachable"]


class GatewayUnreachable(ClientError):
    """A fleet gateway could not be opened (its SSH tunnel says why)."""
