"""The Build screen's data: one service image's build, run by the gateway's update
service (a Build operation) — its log, its step, how it ended."""

from collections.abc import Callable

from agile_tui.client.gateway import UpdaterEvent
from agile_tui.client.images import build_step
from agile_tui.client.updates import UpdaterClient
from agile_tui.models.operation import Follower
from services import contract as c


class BuildModel(Follower):
    def __init__(self, updater: Callable[[], UpdaterClient], service: str, strategy: str):
        super().__init__(updater)
        self.service = service
        self.strategy = strategy
        self.outcome = "running"  # running | built | failed | cancelled
        self.error = ""
        self.step: tuple[int, int] | None = None  # (n, of)
        self.ended = False

    async def start(self) -> None:
        op_id = await self.updater().build(self.service, self.strategy)
        if not self.operation.id:  # its Started signal may have come first
            self.operation.id = op_id

    def heard_build(self, event: UpdaterEvent) -> str:
        """What `event` is for this build: "log" (a line, maybe a step), "ended", or ""."""
        if self.ended:
            return ""
        heard = self.heard(event, adopt=lambda kind: kind == "build")
        if heard == "log":
            self.step = build_step(self.operation.said[-1]) or self.step
        elif heard == "ended":
            self.finished(*event.body[1:])
        return heard

    def finished(self, state: str, message: str) -> None:
        self.ended = True
        if state == c.OperationState.CANCELLED:
            self.outcome = "cancelled"
        elif state == c.OperationState.SUCCEEDED:
            self.outcome = "built"
        else:
            self.outcome, self.error = "failed", message

    def cancelling(self) -> None:
        """Cancelled as far as the screen goes; the Ended signal confirms it."""
        self.outcome = "cancelled"

    async def cancel(self) -> bool:
        """False: the build had ended."""
        return await self.updater().cancel()
