"""Non-UI code never loads textual or rich, and heavy imports stay off the TUI's path."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def non_ui_modules() -> list[str]:
    modules = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    for path in sorted((ROOT / "agile_tui" / "client").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [*modules, "agile_tui.config", "agile_tui.cli"]


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
    """docker, plotext and the radio stacks load only when a section needs them."""
    code = (
        "import sys, agile_tui.cli, agile_tui.app\n"
        "heavy = ('docker', 'plotext', 'textual_plotext', 'bleak', 'zigpy')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
