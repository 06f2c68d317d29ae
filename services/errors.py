"""What the gateway's code could not do, under one root: AgileError, with a child per
boundary it crosses (the bus, the Docker engine, a registry, storage) and the operator's
configuration. Each is raised where the library is called, its text meant for the
operator as it is; a class that was a RuntimeError or ValueError before keeps that base
too, so that no caller's handling changes.

The D-Bus error replies the services send (services.contract's NoResult, AccessDenied,
...) are the bus contract's, not these."""


class AgileError(Exception):
    pass


class BusError(AgileError):
    """A call on the gateway bus failed. `name`: the D-Bus error's name; "" when the
    connection itself is gone (or there is none)."""

    def __init__(self, text: str, name: str = "") -> None:
        super().__init__(text)
        self.name = name

    @property
    def lost(self) -> bool:
        return not self.name


class EngineError(AgileError):
    """A call of the Docker engine failed (or what it was asked to make or load)."""


class EngineUnreachable(EngineError):
    """No Docker engine answers at `where`; `reason` in a few words (the SDK's own
    message is a nested exception repr)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"Docker engine {where}: {reason}")
        self.where = where
        self.reason = reason


class RegistryError(AgileError):
    """A registry refused, did not answer, or answered what it must not."""


class StorageError(AgileError):
    """Storage could not read or write what it keeps."""


class ConfigurationError(AgileError, ValueError):
    """An option, a configuration file or a recipe the operator wrote is wrong."""
