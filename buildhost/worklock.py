"""One build at a time per architecture on a machine: builds of one architecture share
its staging folders and wheelhouse, and the hierarchy's tags (the update service's Build,
the CLI and a benchmark may run at once). Two locks, never held together: a build ensures
the hierarchy first, then builds."""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from services.paths import WORK


@contextmanager
def one_at_a_time(what: str) -> Iterator[None]:
    """Held until the block ends (closing the file lets the next one in, also when the
    process dies)."""
    WORK.mkdir(parents=True, exist_ok=True)
    with (WORK / f"{what}.lock").open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        yield
