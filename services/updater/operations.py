"""Operations of the update service: one at a time, each in a thread of its own, saying
what it does as it goes, so that a client can attach, leave and come back."""

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from services.contract import Operation, OperationState
from services.errors import AgileError

KEPT_LINES = 500  # what a client attaching late is shown


class Cancelled(AgileError):
    """The operation was cancelled before it changed anything."""


class Busy(AgileError, RuntimeError):
    """Another operation runs."""


# What an operation says as it goes: ("log", line), ("progress", layer, done, total),
# ("ended", state, message). Called from the operation's thread.
Listener = Callable[["Running", tuple[object, ...]], None]


@dataclass
class Running:
    id: str
    kind: str
    target: str
    listener: Listener
    state: str = OperationState.RUNNING
    message: str = ""
    started: float = field(default_factory=time.time)
    ended: float = 0.0
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=KEPT_LINES))
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    cancellable: bool = True  # until it changes what runs
    _shown: dict[str, int] = field(default_factory=dict)  # layer -> last percent sent

    def say(self, line: str) -> None:
        self.lines.append(line)
        self.listener(self, ("log", line))

    def progress(self, layer: str, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if self._shown.get(layer) == percent:
            return  # the engine reports every few kilobytes; a percent is enough to show
        self._shown[layer] = percent
        self.listener(self, ("progress", layer, done, total))

    def check(self) -> None:
        """Raises Cancelled if a cancel came while the operation can still stop cleanly."""
        if self.cancel_requested.is_set() and self.cancellable:
            raise Cancelled

    def past_return(self) -> None:
        """From here on the operation changes what runs: a cancel no longer stops it."""
        self.check()
        self.cancellable = False

    def snapshot(self) -> Operation:
        return Operation(
            self.id,
            self.kind,
            self.target,
            str(self.state),
            self.message,
            self.started,
            self.ended,
            tuple(self.lines),
        )


# An operation's work: says what it does through `Running`, returns how it ended.
Work = Callable[[Running], tuple[OperationState, str]]


class Operations:
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.current: Running | None = None
        self._lock = threading.Lock()

    def start(self, kind: str, target: str, work: Work) -> Running:
        with self._lock:
            if self.current is not None and self.current.state == OperationState.RUNNING:
                raise Busy(
                    f"{self.current.kind} of {self.current.target} runs "
                    f"(operation {self.current.id}); wait for it or cancel it"
                )
            op = Running(uuid.uuid4().hex[:12], kind, target, self.listener)
            self.current = op
        threading.Thread(target=self._run, args=(op, work), name=f"op-{op.id}", daemon=True).start()
        return op

    def _run(self, op: Running, work: Work) -> None:
        try:
            state, message = work(op)
        except Cancelled:
            state, message = OperationState.CANCELLED, "cancelled before anything changed"
        except Exception as exc:  # said to every client; the service keeps serving
            state, message = OperationState.FAILED, str(exc) or type(exc).__name__
        if message:
            op.say(message)
        op.message, op.ended = message, time.time()
        op.state = state
        self.listener(op, ("ended", str(state), message))

    def cancel(self) -> bool:
        """True if the running operation will stop without changing anything."""
        op = self.current
        if op is None or op.state != OperationState.RUNNING or not op.cancellable:
            return False
        op.cancel_requested.set()
        return True
