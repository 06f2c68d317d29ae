"""A service's versions from this project's own history, to build and measure updates
over (the paper benchmark's series): checkouts of the commits that changed its code, and
a dependency change and a base change after them."""

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from buildhost.build import recipes_dir
from services.paths import ROOT

# Where each image's code lives: a commit touching these is a new version of it.
CODE = {
    "storage": ("services/storage",),
    "ble": ("services/ble",),
    "core": ("services/protocolmanager", "services/devicemanager"),
}
# The dependency change (time zones for storage's local-time queries, as a wheel) and
# the base change (the same, as the runtime image's Debian package).
DEPENDENCY = "tzdata>=2024.1"
BASE_PACKAGE = "tzdata"


@dataclass(frozen=True)
class Version:
    code: Path  # a checkout: the code and the pyproject.toml it is built with
    change: str  # from the version before: "code", "dependency", "base" ("" for the first)
    recipes: Path | None = None  # other than today's (dockerfiles/ laid out)


def checkouts(
    paths: Iterable[str], count: int, into: Path, own_dependencies: bool = False
) -> list[Path]:
    """The last `count` commits that changed `paths`, oldest first, each checked out
    with today's pyproject.toml (the same dependencies: a code-only release), or with
    its own if `own_dependencies`."""
    log = subprocess.run(
        ["git", "-C", str(ROOT), "log", "--format=%H", f"-n{count}", "--", *paths],
        capture_output=True,
        text=True,
        check=True,
    )
    commits = log.stdout.split()[::-1]
    if len(commits) < count:
        raise SystemExit(f"{' '.join(paths)}: {len(commits)} commits here, {count} needed")
    trees = []
    for commit in commits:
        tree = into / commit[:12]
        tree.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "-C", str(ROOT), "archive", commit], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"git archive {commit} failed")
        if not own_dependencies:
            shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
        trees.append(tree)
    return trees


def series(service: str, count: int, work: Path) -> list[Version]:
    """`count` versions of a service, oldest first: code changes from its history, then
    (from 4 versions on) a dependency change and a base change as the last two."""
    coded = count - 2 if count >= 4 else count
    trees = checkouts(CODE[service], coded, work / "code" / service)
    versions = [Version(tree, "code" if n else "") for n, tree in enumerate(trees)]
    if count >= 4:
        newer = work / "code" / f"{service}-dependency"
        shutil.copytree(trees[-1], newer)
        pyproject = newer / "pyproject.toml"
        text = pyproject.read_text()
        pyproject.write_text(
            text.replace("dependencies = [\n", f'dependencies = [\n    "{DEPENDENCY}",\n', 1)
        )
        versions += [
            Version(newer, "dependency"),
            Version(newer, "base", changed_base(work / "recipes-base")),
        ]
    return versions


def changed_base(folder: Path) -> Path:
    """Today's recipes with the runtime image's (and so the build image's) one more
    Debian package."""
    if not folder.exists():
        shutil.copytree(recipes_dir(), folder)
        runtime = folder / "base" / "python.Dockerfile"
        text = runtime.read_text()
        changed = text.replace("python3 ca-certificates", f"python3 ca-certificates {BASE_PACKAGE}")
        assert changed != text, "the runtime recipe's package line moved"
        runtime.write_text(changed)
    return folder
