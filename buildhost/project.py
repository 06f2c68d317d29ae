"""The gateway project as the image builds need it: its version, its dependencies per
extra, and its own wheel. From pyproject.toml in a checkout; from the installed
distribution's metadata and files otherwise (an installed gateway builds its images)."""

import base64
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from services.paths import PYPROJECT, ROOT, SOURCE_TREE

DIST = "agile-gateway"


def version() -> str:
    if SOURCE_TREE:
        return str(tomllib.loads(PYPROJECT.read_text())["project"]["version"])
    return importlib.metadata.version(DIST)


def requirements(extras: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """Dependencies with these extras, without the project itself; of the checkout `root`
    (another version's, for the paper benchmark)."""
    if SOURCE_TREE:
        pyproject = PYPROJECT if root == ROOT else root / "pyproject.toml"
        project = tomllib.loads(pyproject.read_text())["project"]
        reqs = list(project["dependencies"])
        for extra in extras:
            optional = project["optional-dependencies"][extra]
            reqs += [r for r in optional if not r.startswith(project["name"])]
        return reqs
    reqs = []
    for line in importlib.metadata.requires(DIST) or []:
        spec, _, marker = line.partition(";")
        # Markers here are only `extra == "name"` (pyproject's optional dependencies).
        extra = marker.split("==")[-1].strip().strip("'\"") if "extra" in marker else ""
        if (not extra or extra in extras) and not spec.startswith(DIST):
            reqs.append(spec.strip())
    return reqs


def build_wheel(folder: Path, root: Path = ROOT) -> None:
    """The project's own wheel (no dependencies) into `folder`, from the checkout `root`."""
    if SOURCE_TREE:
        # setuptools copies the packages into build/ and never empties it: a module
        # deleted (or a test's probe) would ride along in every later wheel.
        for stale in (root / "build" / "lib", *(root / "build").glob("bdist.*")):
            shutil.rmtree(stale, ignore_errors=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), "."],
            cwd=root,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pip wheel failed:\n{proc.stderr.strip()[-2000:]}")
        return
    _wheel_of_installed(folder)


def _wheel_of_installed(folder: Path) -> Path:
    """A wheel of the installed distribution, from its own files (RECORD lists them)."""
    dist = importlib.metadata.distribution(DIST)
    name = f"agile_gateway-{dist.version}"
    wheel = folder / f"{name}-py3-none-any.whl"
    info = f"{name}.dist-info"
    record: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(dist.files or [], key=str):
            path = str(file)
            top = path.split("/")[0]
            # The packages and the metadata; not __pycache__, scripts or RECORD itself.
            if "__pycache__" in path or top.startswith("..") or path.endswith("RECORD"):
                continue
            if top.endswith(".dist-info") and top != info:
                continue
            if top.endswith(".dist-info") and path.endswith(("INSTALLER", "REQUESTED")):
                continue
            data = Path(file.locate()).read_bytes()
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        record.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel
