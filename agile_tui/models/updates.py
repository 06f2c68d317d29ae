"""The Updates screen's data: the update service's plan, and the operation followed (an
update or rollback, or another client's operation). Everything runs in the service
(org.eclipse.agail.Updater) on the gateway: this only asks and listens."""

from collections.abc import Callable

from agile_tui.client.errors import ClientError
from agile_tui.client.updates import UpdateCheck, UpdaterClient
from agile_tui.models.operation import Follower, Operation
from services import contract as c

BUSY = {
    "update": "updating",
    "rollback": "rolling back",
    "recover": "recovering a cut-off update",
    "build": "building",
    "prune": "pruning",
}


class UpdatesModel(Follower):
    def __init__(self, updater: Callable[[], UpdaterClient], registry: str) -> None:
        super().__init__(updater)
        self.registry = registry  # "" the stack's own
        self.result: UpdateCheck | None = None
        self.problem = ""  # why there is no plan
        self.busy = ""  # what runs: "", "checking", "updating", "rolling back", ...

    async def attach(self) -> tuple[str, c.Operation]:
        """Where the service's operation is: ("running", op) — followed now, started by
        another client or by this operator before the session dropped; ("ended", op) —
        the one followed ended while the bus was away; ("idle", op) — its last one's
        lines shown, however it ended."""
        op = await self.updater().current()
        ours = bool(op.id) and op.id == self.operation.id
        if op.running:
            if not ours:  # else its lines were shown as they came
                title = f"{op.kind} of {op.target}: running"
                self.operation = Operation(op.id, list(op.lines), title=title)
            self.busy = BUSY.get(op.kind, op.kind)
            return "running", op
        if ours:
            return "ended", op
        if op.id:
            title = f"last: {op.kind} of {op.target}, {op.state}"
            self.operation = Operation("", list(op.lines), title=title)
        return "idle", op

    async def check(self) -> None:
        """The plan: what each service's update downloads; else the problem, why not."""
        self.result, self.problem = None, ""
        try:
            registry, strategy, plans = await self.updater().plan(self.registry)
        except ClientError as exc:
            self.problem = str(exc)
            return
        self.result = UpdateCheck(registry, strategy, plans)

    def begin(self, busy: str) -> None:
        """An operation about to be started: "updating" or "rolling back"."""
        self.busy = busy
        self.operation = Operation()

    async def start(self, services: list[str]) -> None:
        """The update of `services`, or the rollback of the first, as begun."""
        updater = self.updater()
        if self.busy == "updating":
            registry = self.result.registry if self.result else ""
            op_id = await updater.update(services, registry)
        else:
            op_id = await updater.rollback(services[0])
        if not self.operation.id:  # its Started signal may have been first
            self.operation.id = op_id

    async def cancel(self) -> bool:
        return await self.updater().cancel()

    def ended(self, state: str) -> None:
        """The operation followed ended (its lines and pulls stay shown)."""
        self.operation.id = ""
        self.operation.title = f"ended: {state}"
        self.busy = "checking"
