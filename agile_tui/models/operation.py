"""One operation of the gateway's update service as a screen follows it: what it said,
what it pulled. The operation runs in the service; its signals say how it goes."""

from collections.abc import Callable
from dataclasses import dataclass, field

from agile_tui.client.gateway import UpdaterEvent
from agile_tui.client.updates import UpdaterClient


@dataclass
class Operation:
    """The operation followed: its id ("" none yet), what it said and pulled."""

    id: str = ""
    said: list[str] = field(default_factory=list)
    pulls: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer: done, total
    title: str = ""  # what the log is of, and where it stands


class Follower:
    """One operation at a time, as its signals come (they may come before the call that
    started it has answered, or from another client's start)."""

    def __init__(self, updater: Callable[[], UpdaterClient]) -> None:
        self.updater = updater  # the gateway's, now; BusError when there is no bus
        self.operation = Operation()

    def say(self, line: str) -> None:
        self.operation.said.append(line)

    def pulled(self, layer: str, done: int, total: int) -> None:
        self.operation.pulls[layer] = (done, total)

    def follow(self, op_id: str = "") -> None:
        self.operation = Operation(op_id)

    def heard(self, event: UpdaterEvent, adopt: Callable[[str], bool]) -> str:
        """What `event` is for the operation followed: "started" (`adopt`ed: one
        of the kind this screen follows, and none is followed yet), "log", "progress",
        "ended", or "" (another's)."""
        op_id, *args = event.body
        if event.member == "Started" and not self.operation.id and adopt(args[0]):
            self.follow(op_id)
            return "started"
        if op_id != self.operation.id or not op_id:
            return ""
        if event.member == "Log":
            self.say(args[0])
            return "log"
        if event.member == "Progress":
            self.pulled(*args)
            return "progress"
        return "ended" if event.member == "Ended" else ""
