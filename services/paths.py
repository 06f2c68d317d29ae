"""Where the gateway's own files are: one module, so that no other has to work it out."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the project: services/, dockerfiles/, ...
DOCKERFILES = ROOT / "dockerfiles"  # the images' recipes and the stack's compose files
