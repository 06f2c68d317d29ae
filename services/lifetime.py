"""Child processes that do not outlive the process that started them."""

import contextlib
import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def dies_with_parent() -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when its parent dies, even by SIGKILL, so a
    killed supervisor leaves no service or bus daemon running unsupervised. Call it in
    the thread that spawns: the kernel ties the signal to that thread's life."""
    parent = os.getpid()

    def preexec() -> None:
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the line above
            os._exit(1)

    return preexec
