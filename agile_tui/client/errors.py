"""What agile-tui's client could not get or do: the one root the screens catch, its text
meant for the operator as it is. The client translates what its libraries raise (D-Bus
errors, a dropped connection, the Docker SDK's and its HTTP stack's errors) into these,
for reads as well as actions."""


class ClientError(Exception):
    pass


class BusError(ClientError):
    """A call on the gateway bus failed. `name`: the D-Bus error's name; "" when the
    connection itself is gone (or there is none)."""

    def __init__(self, text: str, name: str = "") -> None:
        super().__init__(text)
        self.name = name

    @property
    def lost(self) -> bool:
        return not self.name


class EngineError(ClientError):
    """A call of the Docker engine failed."""


class EngineUnreachable(EngineError):
    """No Docker engine answers at the address."""


class GatewayUnreachable(ClientError):
    """A fleet gateway could not be opened (its SSH tunnel says why)."""
