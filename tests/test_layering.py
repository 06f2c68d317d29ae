"""Where code runs, as the tree says it: each side imports only what runs there; non-UI
code never loads textual or rich, heavy imports stay off the TUI's path, one error root,
one engine module, and tests and benchmarks share the test kit only."""

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# Where code runs: the gateway's services, the build and publish side, the operator's side
# (the fleet and its settings), and agile-tui on top of them.
SIDES = ("services", "buildhost", "fleet", "agile_tui")


def modules_under(folder: Path) -> list[str]:
    modules = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def non_ui_modules() -> list[str]:
    modules = [m for side in SIDES[:-1] for m in modules_under(ROOT / side)]
    for folder in ("client", "models"):
        modules += modules_under(ROOT / "agile_tui" / folder)
    return [*modules, "agile_tui.cli"]


def test_there_are_modules_to_check() -> None:
    assert "services.contract" in non_ui_modules()


@pytest.mark.parametrize("module", non_ui_modules())
def test_non_ui_module_does_not_import_textual_or_rich(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"{module} loads {out}"


def test_tui_start_up_path_leaves_heavy_imports_out() -> None:
    """docker and the radio stacks load only when a section needs them, and a
    section's screens (and the fleet's modules) when it first opens."""
    code = (
        "import sys, agile_tui.cli, agile_tui.app\n"
        "heavy = ('docker', 'bleak', 'zigpy')\n"
        "later = ('agile_tui.screens.', 'fleet.', 'services.images.', 'buildhost')\n"
        "now = ('agile_tui.screens.help', 'fleet.config')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "    or (m.startswith(later) and m not in now))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def _unit(module: str) -> str:
    """The package a module belongs to (services.images, agile_tui.client, ...), or the
    module itself where it sits at the top of its project (services.contract)."""
    parts = module.split(".")
    if len(parts) >= 2 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return ".".join(parts[:2]) if len(parts) >= 2 else parts[0]


def import_graph() -> dict[str, set[str]]:
    """Which package imports which, counting imports inside functions too."""
    graph: dict[str, set[str]] = {}
    for top in (*SIDES, "testkit", "benchmarks"):
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            source = _unit(".".join(parts))
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    # `from services import contract`: the module imported is services.contract
                    names = (
                        [f"{node.module}.{a.name}" for a in node.names]
                        if "." not in node.module
                        else [node.module]
                    )
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] in (*SIDES, "testkit", "benchmarks"):
                        target = _unit(name)
                        if target != source:
                            graph.setdefault(source, set()).add(target)
    return graph


def test_no_import_cycle_between_packages() -> None:
    graph = import_graph()
    assert "services.images" in graph and "services.runtime" in graph
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif len(path) < 12:
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles))[:10])


# What each side may import of the project: the gateway's services only themselves (but
# the update service builds with the build side's code where a gateway is its own build
# host: agile-tui's Images section), the build side and the fleet the gateway's shared
# code, agile-tui all three; none of them the test kit, the tests or the benchmarks.
MAY_IMPORT = {
    "services": {"services"},
    "buildhost": {"buildhost", "services"},
    "fleet": {"fleet", "services"},
    "agile_tui": {"agile_tui", "services", "buildhost", "fleet"},
}
BUILDS_ON_THE_GATEWAY = ("services/updater/service.py", "buildhost.build")


def test_each_side_imports_only_what_runs_where_it_runs() -> None:
    wrong = []
    for relative, node in kit_nodes(*SIDES):
        side = relative.parts[0]
        for name in imported(node):
            top = name.split(".")[0]
            project = top in (*SIDES, "testkit", "tests", "benchmarks")
            allowed = (
                top in MAY_IMPORT[side] or (relative.as_posix(), name) == BUILDS_ON_THE_GATEWAY
            )
            if project and not allowed:
                wrong.append(f"{relative}: {name}")
    assert wrong == []


def imported(node: ast.AST) -> list[str]:
    """The modules an import statement names ([] for any other node)."""
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return []


def tui_nodes(*skipped: str) -> Iterator[tuple[Path, ast.AST]]:
    """Every syntax node of agile_tui, with its file, but below `skipped`."""
    for path in (ROOT / "agile_tui").rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[1] not in skipped:
            for node in ast.walk(ast.parse(path.read_text())):
                yield relative, node


def test_the_tui_reaches_the_gateway_only_through_the_contract_and_its_client() -> None:
    """Screens, widgets and the app import the bus contract, the error root and
    agile_tui.client; the rest of `services` only through that client layer."""
    wrong = []
    for relative, node in tui_nodes("client", "cli.py", "__init__.py"):
        contract_only = isinstance(node, ast.ImportFrom) and all(
            a.name == "contract" for a in node.names
        )
        for name in imported(node):
            if name.startswith("services") and name not in ("services.contract", "services.errors"):
                if name == "services" and contract_only:
                    continue  # from services import contract
                wrong.append(f"{relative}: {name}")
    assert not wrong, "\n".join(wrong)


def test_screens_name_no_bus_or_engine_library_and_never_catch_everything() -> None:
    """Outside agile_tui.client nothing imports dbus_fast or docker, and no handler
    catches Exception: what the gateway or the engine fails with reaches the screens as
    the client's errors, one root (ClientError)."""
    wrong = []
    for relative, node in tui_nodes("client"):
        if isinstance(node, ast.ExceptHandler):
            caught = ast.unparse(node.type) if node.type else "everything"
            if caught in ("Exception", "BaseException", "everything"):
                wrong.append(f"{relative}:{node.lineno}: catches {caught}")
        wrong += [
            f"{relative}: imports {name}"
            for name in imported(node)
            if name.split(".")[0] in ("dbus_fast", "docker")
        ]
    assert not wrong, "\n".join(wrong)


def test_each_type_ignore_names_its_error_and_says_why() -> None:
    """mypy (in `./dev lint`) reports an ignore that hides nothing; what remains must say
    which error it hides and why that is right, on its line."""
    bare = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in ("services", "agile_tui", "benchmarks")
        for path in sorted((ROOT / top).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "type: ignore" in line and not re.search(r"type: ignore\[[a-z,-]+\]  # \S", line)
    ]
    assert bare == []


def kit_nodes(*tops: str) -> Iterator[tuple[Path, ast.AST]]:
    for top in tops:
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                yield path.relative_to(ROOT), node


def test_tests_and_benchmarks_share_the_test_kit_and_lean_on_nothing_else() -> None:
    """testkit/ is what both run against. No test imports a conftest, a test module or a
    private name; the benchmarks and the kit import nothing of tests/; and nothing but the
    benchmarks themselves imports one (the suite runs them as `./dev bench` does)."""
    wrong = []
    for relative, node in kit_nodes("tests", "benchmarks", "testkit", "services", "agile_tui"):
        top = relative.parts[0]
        for name in imported(node):
            parts = name.split(".")
            if (
                "conftest" in parts
                or any(p.startswith("test_") for p in parts)
                or (parts[0] == "tests" and top in ("benchmarks", "testkit"))
                or (parts[0] == "benchmarks" and top != "benchmarks")
            ):
                wrong.append(f"{relative}: {name}")
        if isinstance(node, ast.ImportFrom) and top == "tests":
            private = [a.name for a in node.names if a.name.startswith("_")]
            wrong += [f"{relative}: {node.module}.{n}" for n in private]
    assert wrong == []


def test_every_error_the_code_raises_has_the_one_root() -> None:
    """Each exception class of services and agile-tui's client is an AgileError (those
    that were a RuntimeError or ValueError keep that base as well); the only others are
    the bus contract's D-Bus error replies."""
    import importlib
    import inspect

    from dbus_fast import DBusError

    from services.errors import AgileError

    stray = [
        f"{module}.{name}"
        for module in non_ui_modules()
        for name, value in vars(importlib.import_module(module)).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module
        and not issubclass(value, (AgileError, DBusError))
    ]
    assert stray == []


def test_a_docker_client_is_made_in_one_module() -> None:
    """services/engine.py makes every client of the engine (and says what is wrong
    with it the same way everywhere)."""
    made = [
        f"{relative}:{node.lineno}"
        for relative, node in kit_nodes("services", "agile_tui", "benchmarks", "testkit")
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("from_env", "DockerClient")
        and relative != Path("services/engine.py")
    ]
    assert made == []
