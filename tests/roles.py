"""Users of each role, made on this machine for the session, and the probe that calls
every method of the roles table as one of them (tests/role_probe.py): the access
matrix of tests/test_access.py (native runtime) and tests/images/test_stack.py
(container stack)."""

import asyncio
import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dbus_fast
import pytest

from services import contract as c
from services.access import ROLE_GROUPS_ENV
from services.catalog import CATALOG
from services.contract import Role
from services.contract_api import ROLES, SERVICE_CALLS, M, methods
from tests.helpers import THERMOMETER

PROBE = Path(__file__).parent / "role_probe.py"
# The system's Python, which any user may run (this one may live in root's home), with
# this environment's dbus-fast (same Python version: the suite needs 3.11).
PROBE_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
# The project (the probe calls through services.bus) and this environment's packages.
PROBE_PATH = f"{Path(__file__).parent.parent}:{Path(dbus_fast.__file__).parent.parent}"
GROUPS = {
    Role.VIEWER: "agtest-viewer",
    Role.OPERATOR: "agtest-operator",
    Role.ADMIN: "agtest-admin",
}
USERS = {
    Role.VIEWER: "agtest-v",
    Role.OPERATOR: "agtest-o",
    Role.ADMIN: "agtest-a",
    Role.NONE: "agtest-n",
}
BUS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
SERVICES = ("storage", "devicemanager", "mqtt", "protocolmanager", "dummy")

# Where each interface's methods are called (a device that need not exist: a call let
# through is refused by its arguments or its object, never by its caller).
OBJECTS = {
    c.PROTOCOL_MANAGER_IFACE: (c.PROTOCOL_MANAGER_NAME, c.PROTOCOL_MANAGER_PATH),
    c.DEVICE_MANAGER_IFACE: (c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH),
    c.DEVICE_IFACE: (c.DEVICE_NAME, c.device_path(THERMOMETER.device_id)),
    c.PROTOCOL_IFACE: (c.protocol_bus_name("Dummy"), c.protocol_path("Dummy")),
    c.STORAGE_IFACE: (c.STORAGE_NAME, c.STORAGE_PATH),
    c.RUNTIME_IFACE: (c.RUNTIME_NAME, c.RUNTIME_PATH),
    c.UPDATER_IFACE: (c.UPDATER_NAME, c.UPDATER_PATH),
    c.BRIDGE_IFACE: (c.BRIDGE_NAME, c.BRIDGE_PATH),
    c.ACCESS_IFACE: (c.DEVICE_MANAGER_NAME, c.ACCESS_PATH),
}


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def role_users() -> Iterator[dict[Role, pwd.struct_passwd]]:
    """A user in each role group and one in none, made on this machine for the session
    (and removed after): group rules are about real groups."""
    # The suite runs as root (dockerd, sshd, users like these): say so rather than skip.
    assert os.geteuid() == 0, "making users and groups needs root (.ci/run runs as root)"
    made_groups, made_users = [], []
    try:
        for group in GROUPS.values():
            if not _exists(grp.getgrnam, group):
                _run("groupadd", "--system", group)
                made_groups.append(group)
        # A shell, and no password rather than a locked one: the fleet test logs in
        # over SSH (with a key) as the operator.
        login = ["-s", "/bin/sh", "-p", "*"]
        for role, user in USERS.items():
            groups = GROUPS.get(role, "")
            if _exists(pwd.getpwnam, user):
                _run("usermod", *login, "-G", groups, user)  # one a killed run left
                continue
            extra = ["-G", groups] if groups else []
            _run("useradd", "--system", "-M", "-N", "-g", "nogroup", *login, *extra, user)
            made_users.append(user)
        for service in SERVICES:  # the container stack's uids, known here too
            uid = CATALOG[service].uid
            if not _exists(pwd.getpwuid, uid):
                name = f"agtest-{service}"
                _run("useradd", "--system", "-M", "-N", "-g", "nogroup", "-u", str(uid), name)
                made_users.append(name)
        yield {role: pwd.getpwnam(user) for role, user in USERS.items()}
    finally:
        for user in made_users:
            subprocess.run(["userdel", user], capture_output=True, timeout=60)
        for group in made_groups:
            subprocess.run(["groupdel", group], capture_output=True, timeout=60)


def _exists(lookup: Callable[[Any], object], key: str | int) -> bool:
    try:
        lookup(key)
    except KeyError:
        return False
    return True


@pytest.fixture
def role_groups_set(monkeypatch) -> None:
    """The gateways a test starts give roles by the test's groups."""
    monkeypatch.setenv(ROLE_GROUPS_ENV, role_groups_setting())


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder other users can pass (pytest's own are root's alone)."""
    top = Path(tempfile.mkdtemp(prefix="agile-access-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


async def probe(
    address: str, uid: int, gid: int, groups: list[int], ifaces: list[str]
) -> dict[str, Any]:
    calls = calls_of(ifaces)
    # In a thread: the services may run in this test's event loop.
    done = await asyncio.to_thread(
        run_as,
        uid,
        gid,
        groups,
        [PROBE_PYTHON, str(PROBE), address],
        input=json.dumps(calls),
        timeout=120,
        cwd="/",
        env={**os.environ, "PYTHONPATH": PROBE_PATH},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def methods_of(iface: str) -> dict[str, M]:
    return {
        m: v
        for m, v in methods()[iface].items()
        if iface != c.PROTOCOL_IFACE or m not in ("PermitJoin", "PermitJoinRemaining")
    }  # the Dummy has no network


def groups_of(user: pwd.struct_passwd) -> list[int]:
    return [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem]


def expected(role: Role, service: str, iface: str, member: str) -> bool:
    return role >= ROLES[iface][member] or (iface, member) in SERVICE_CALLS.get(service, ())


def role_groups_setting() -> str:
    return ",".join(f"{role}={group}" for role, group in GROUPS.items())


def calls_of(ifaces: list[str]) -> list[list[str]]:
    """What the probe calls: every method of these interfaces, where it lives."""
    return [
        [*OBJECTS[iface], iface, member, m.ins]
        for iface in ifaces
        for member, m in methods_of(iface).items()
    ]


def mismatches(
    answers: dict[str, str], role: Role, service: str, ifaces: list[str], refusals: tuple[str, ...]
) -> dict[str, str]:
    """Each call answered otherwise than the roles table says: let through where it
    should be refused (an error of `refusals`), or refused where it should be let through."""
    wrong = {}
    for iface in ifaces:
        for member in methods_of(iface):
            error = answers[f"{iface}.{member}"]
            if (error not in refusals) != expected(role, service, iface, member):
                wrong[f"{iface}.{member}"] = error or "answered"
    return wrong


def busctl_as(
    uid: int, gid: int, groups: list[int], address: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """busctl on the bus at `address` as that user (an independent client)."""
    return run_as(uid, gid, groups, ["busctl", f"--address={address}", *args], timeout=60)


def run_as(
    uid: int, gid: int, groups: list[int], argv: list[str], **options: Any
) -> subprocess.CompletedProcess[str]:
    """`argv` run as that user, with those groups; its output as text."""
    return subprocess.run(
        argv, capture_output=True, text=True, user=uid, group=gid, extra_groups=groups, **options
    )


def busctl_user(
    user: pwd.struct_passwd, address: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return busctl_as(user.pw_uid, user.pw_gid, groups_of(user), address, *args)
