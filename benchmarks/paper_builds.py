"""Build times, the paper's claim that "the cross-container optimization technique
proposed facilitates the reduction in build times for images": the stack's images built
with each service on bases of its own against the shared base hierarchy, per strategy.

Each run builds on this machine's engine, its base images in a namespace of their own
(this machine's hierarchy stays where it is) and every recipe marked with the run's own
label, so that the engine's build cache has nothing for it: cold, every base built from
the imported Debian (as the paper's builds start from an upstream image; the
debootstrap is not timed), then after each change of the version series — one code
line, one wheel added, one Debian package added to the runtime — every image again.
Own bases: the baseline recipe as Fig. 6's v1 (each service's toolchain layer its own),
multi-stage and squashed on a copy of the hierarchy built for each service alone (its
own namespace and label). Shared: the baseline recipe on the hierarchy (Fig. 6's v2),
and today's recipes. A run's images are removed after it.

Builds for another architecture run under qemu-user-static here: emulation inflates
their absolute times, so only their ratios compare.
"""

import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker

from buildhost.build import WHEELHOUSE, build, recipes_dir, version_reference
from buildhost.hierarchy import ensure_hierarchy, hierarchy
from buildhost.paper_rows import BuildTime
from buildhost.versions import BASE_PACKAGE, DEPENDENCY
from testkit.docker_images import forget_images

SHARED_BASELINE = Path(__file__).parent / "recipes" / "python-service.shared.Dockerfile"
STEPS = ("cold", "code", "dependency", "base")


def quiet(_line: str) -> None:
    pass


class Recipes:
    """The recipe folders (laid out as dockerfiles/) of one run: per service for own
    bases, each with the base change or not, all marked with the run's `mark`."""

    def __init__(self, folder: Path, mark: str) -> None:
        self.folder, self.mark = folder, mark

    def __call__(self, bases: str, strategy: str, service: str, base_changed: bool) -> Path:
        path = (
            self.folder
            / f"{namespace(bases, strategy, service, self.mark)}{'-base' * base_changed}"
        )
        if not path.exists():
            self._make(path, bases, strategy, service, base_changed)
        return path

    def _make(
        self, path: Path, bases: str, strategy: str, service: str, base_changed: bool
    ) -> None:
        shutil.copytree(recipes_dir(), path)
        baseline = path / "python-service.baseline.Dockerfile"
        runtime = path / "base" / "python.Dockerfile"
        if bases == "shared" and strategy == "baseline":  # Fig. 6's v2
            shutil.copy(SHARED_BASELINE, baseline)
            bus = path / "bus"
            shutil.copy(bus / "multistage.Dockerfile", bus / "baseline.Dockerfile")
        # Every recipe that starts from Debian, its run's label first: nothing cached.
        label = namespace(bases, strategy, service, self.mark)
        for recipe in (baseline, runtime, *(path / "bus").glob("*.Dockerfile")):
            text = recipe.read_text()
            start = text.index("\nFROM ") + 1
            at = text.index("\n", start) + 1
            if "/debian:" in text[start:at] or text[start:at] == "FROM ${BASE}\n":
                recipe.write_text(f"{text[:at]}LABEL org.agile-gateway.bench={label}\n{text[at:]}")
        if base_changed:  # v1's toolchain layer, or the hierarchy's runtime
            own_v1 = bases == "own" and strategy == "baseline"
            changed = baseline if own_v1 else runtime
            text = changed.read_text()
            line = "python3-dev " if own_v1 else "python3 ca-certificates "
            changed.write_text(text.replace(line, f"{line}{BASE_PACKAGE} ", 1))
            assert changed.read_text() != text, f"{changed.name}: the package line moved"


def namespace(bases: str, strategy: str, service: str, mark: str) -> str:
    """Where a run's base images are tagged: one for the stack, or one per service."""
    if bases == "own" and strategy != "baseline":
        return f"agile-bench-{mark}-{service}"
    return f"agile-bench-{mark}"


def checkouts(work: Path, code: Path) -> dict[str, Path]:
    """The code each step builds: the checkout, a one-line change of it, and that with
    one more dependency (each marked: its images' version tags are the benchmark's)."""
    trees = {"cold": work / "code-cold", "code": work / "code-changed"}
    if not trees["cold"].exists():
        for n, tree in enumerate(trees.values()):
            shutil.copytree(code, tree)
            (tree / "services" / "_bench_probe.py").write_text(f"CHANGED = {n}\n")
        dependency = work / "code-dependency"
        shutil.copytree(trees["code"], dependency)
        pyproject = dependency / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace(
                "dependencies = [\n", f'dependencies = [\n    "{DEPENDENCY}",\n', 1
            )
        )
    trees["dependency"] = trees["base"] = work / "code-dependency"
    return trees


def build_times(
    client: docker.DockerClient,
    work: Path,
    services: list[str],
    strategies: list[str],
    arches: list[str],
    runs: int,
    steps: tuple[str, ...],
    code: Path,
    done: Callable[[str], bool] = lambda key: False,
) -> Iterator[tuple[str, list[BuildTime]]]:
    """(series key, its rows) per architecture, strategy, bases and run; a series whose
    key `done` says is finished is not built again."""
    trees = checkouts(work, code)
    for arch in arches:
        ensure_hierarchy(client, arch, say=quiet, depth=1)  # the imported Debian
        for strategy in strategies:
            for bases in ("own", "shared"):
                for run in range(1, runs + 1):
                    key = f"builds {arch} {strategy} {bases} {run}"
                    if not done(key):
                        setting = (strategy, arch, bases, run)
                        yield key, list(one_run(client, work, services, setting, steps, trees))


def one_run(
    client: docker.DockerClient,
    work: Path,
    services: list[str],
    setting: tuple[str, str, str, int],
    steps: tuple[str, ...],
    trees: dict[str, Path],
) -> Iterator[BuildTime]:
    """The services built at each step; `setting`: (strategy, architecture, bases, run).
    Its images go afterwards."""
    strategy, arch, bases, run = setting
    mark = secrets.token_hex(4)
    recipes = Recipes(work / f"recipes-{mark}", mark)
    spaces = {service: namespace(bases, strategy, service, mark) for service in services}
    debian = client.images.get(hierarchy(arch)[0].tag)
    for space in set(spaces.values()):
        debian.tag(*hierarchy(arch, space)[0].tag.rsplit(":", 1))
    wheels = WHEELHOUSE / arch
    had = set(wheels.glob("*")) if wheels.exists() else set()
    try:
        for step in steps:
            start = time.monotonic()
            for service in services:
                for _ in build(
                    client,
                    service,
                    strategy,
                    arch,
                    say=quiet,
                    code=trees[step],
                    recipes=recipes(bases, strategy, service, base_changed=step == "base"),
                    retag=False,
                    bases=spaces[service],
                ):
                    pass
            seconds = time.monotonic() - start
            yield BuildTime(arch, strategy, bases, run, step, len(services), seconds)
    finally:
        built = {
            version_reference(service, strategy, arch, code=trees[step])
            for service in services
            for step in steps
        }
        bases_built = [
            layer.tag
            for space in set(spaces.values())
            for layer in reversed(hierarchy(arch, space))
        ]
        forget_images(client, [*built, *bases_built])
        for wheel in set(wheels.glob("*")) - had:
            wheel.unlink()  # the dependency change's: each run starts from the same
        shutil.rmtree(recipes.folder, ignore_errors=True)
