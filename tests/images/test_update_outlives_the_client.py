"""An update runs in the gateway's update service, not in agile-tui: the operator's SSH
session dropping mid-update (agile-tui dies with it) leaves it to finish, and the next
agile-tui shows how it went."""

import os
import subprocess

import pytest

from services import contract as c
from services.bus import connect
from services.updater.client import UpdaterClient
from testkit.operator import over_ssh
from tests.helpers import ROOT, eventually
from tests.images.stack import publish_code_change, stack_app, stack_down, stack_up
from tests.tui import states

pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-drop"


def tuis_on(state) -> set[int]:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        ["pgrep", "-f", f"agile-tui --state-dir {state}"], capture_output=True, text=True
    ).stdout
    return {int(pid) for pid in out.split()}


async def test_an_update_finishes_after_the_operators_session_drops(
    sshd, docker_client, stack_images, registry, tmp_path
) -> None:
    v1 = docker_client.images.get("agile/storage:multistage").id
    state = stack_up(tmp_path / "state", PROJECT, registry=registry)
    bus = await connect((state / "bus.address").read_text().strip())
    updater = UpdaterClient(bus)
    try:
        registry.push(docker_client, v1, "storage", "multistage")
        v2 = publish_code_change(docker_client, registry)

        remote = (
            f"cd {ROOT} && TERM=xterm-256color .venv/bin/agile-tui --state-dir {state} "
            "--section images"
        )
        tmux = over_ssh(sshd, tmp_path, f"agile-drop-{os.getpid()}", remote)
        try:
            tmux.wait_for("bus ●", timeout=60)
            tmux.keys("U")
            tmux.wait_for("in 1 update", timeout=120)  # storage: the registry's only news
            tmux.keys("a")
            tmux.wait_for("bytes to download", timeout=120)
            assert tuis_on(state)
        finally:
            tmux.run("kill-server")  # the session drops: sshd hangs up on agile-tui

        async def tui_gone() -> bool:
            return not tuis_on(state)

        await eventually(tui_gone)
        # The new version waits for its first health check (10 s): still running now.
        assert (await updater.current()).running

        async def ended() -> bool:
            return not (await updater.current()).running

        await eventually(ended, timeout=180)
        op = await updater.current()
        assert op.state == c.OperationState.SUCCEEDED, op.lines
        [storage] = docker_client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={PROJECT}",
                    "com.docker.compose.service=storage",
                ]
            }
        )
        assert storage.image.id == v2

        # The next operator's agile-tui shows what happened while nobody watched.
        app = stack_app(state)
        async with app.run_test(size=(80, 24)) as pilot:
            await states.until(pilot, lambda: app.bus_state == "connected")
            await pilot.press("U")
            await states.on_screen(pilot, "UpdatesScreen")
            screen = app.screen
            await states.until(
                pilot, lambda: any("updated to" in s for s in screen.model.operation.said)
            )
            said = app.screen.query_one("#said")
            assert said.border_subtitle == "last: update of storage, succeeded"
            table = states.table(pilot, "services")
            # The table is made anew from the plan: its rows come after the log's lines.
            await states.until(
                pilot,
                lambda: "storage" in table.rows and table.get_row("storage")[2] == "up to date",
            )
    finally:
        bus.disconnect()
        stack_down(state, PROJECT)
