"""Where the gateway's own files are: one module, so that no other has to work it out.
The same code runs from a source checkout and from an installed wheel."""

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # services/
ROOT = PACKAGE.parent  # the checkout, or site-packages when installed
DOCKERFILES = ROOT / "dockerfiles"  # the images' recipes and the stack's compose files
# The project's top-level folders that ship (pyproject's packages, the images' wheel): a
# build's checkout copy holds them, and an image's code version is read off them.
SHIPPED = ("services", "buildhost", "fleet", "agile_tui", "dockerfiles")
PYPROJECT = ROOT / "pyproject.toml"
SOURCE_TREE = PYPROJECT.exists()  # else an installed package: metadata instead
# What builds stage (contexts, wheels): the checkout's build/, or the user's cache.
WORK = (
    ROOT / "build"
    if SOURCE_TREE
    else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agile-gateway"
)
