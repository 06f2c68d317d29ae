"""Delta updates against plain pulls, side by side, in one run (also part of `./dev bench
images`):

    ./dev bench deltas [code] [wheel] [runtime] [after]   (default: all four)
    ./dev bench deltas --quick   (the suite's, so that it keeps running: the wheel only)

The gateway runs storage v1; the registry has v2, published with its bundle
(`images publish`). For each change, bytes on the wire of the plain pull (the engine's
blob downloads, from the registry's log) and of the delta path (the bundle, fetched and
applied by the update code), each predicted by the plan and measured, and the time the
delta path took (fetch, docker save of the basis, patch, docker load):

1. a one-line code change, in every build strategy;
2. one wheel upgraded (tinydb, the oldest 4.8 release to the newest), multi-stage;
3. the runtime image rebuilt with one Debian package more (`less`), multi-stage;
4. the update after such a delta update, on a gateway engine of its own: the engine's
   pull against fetching only the layers the gateway lacks (after_delta).

Then three delta methods on the changed layers (the tar-aware zstd patch-from used,
zstd patch-from over the whole layer, bsdiff4: size and time), and applying on a 100 MB
basis layer (a real base layer with 250 KB of files rewritten and a 50 KB file added):
time and peak memory of tar-aware and whole-layer deltas, each in a fresh process.
"""

import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from unittest import mock

import docker

from buildhost import build as build_module
from buildhost.build import STRATEGIES, build
from buildhost.hierarchy import RECIPE_LABEL, hierarchy
from buildhost.publish import publish
from services.engine import connect
from services.images import registry as reg
from services.images.export import save
from services.images.layers import chain_ids
from services.images.update import Plan, by_delta, plan
from services.paths import ROOT
from testkit.docker_images import checkout_copy
from testkit.local_registry import LocalRegistry

SERVICE, REPO = "storage", "agile/storage"
OLD_TINYDB = "tinydb==4.8.0"


def quiet(_line: str) -> None:
    pass


def built(client: docker.DockerClient, strategy: str, code: Path = ROOT) -> str:
    for _ in build(client, SERVICE, strategy, say=quiet, code=code):
        pass
    return client.images.get(f"{REPO}:{strategy}").id


@dataclass
class Row:
    change: str
    strategy: str
    pull_predicted: int
    pull_measured: int
    delta_predicted: int
    delta_measured: int
    delta_seconds: float
    changed: int  # compressed bytes of the layers whose content changed
    from_v1: int  # what a pull costs a gateway that has v1 only (this engine has more)


def _drop(client: docker.DockerClient, image_id: str) -> None:
    with suppress(docker.errors.ImageNotFound):
        client.images.remove(image_id, force=True)


def measure(
    client: docker.DockerClient,
    registry: LocalRegistry,
    change: str,
    strategy: str,
    make_v1: Callable[[], str],
    make_v2: Callable[[], str],
) -> tuple[Row, str, str]:
    """One change, both ways. (row, v1 id, v2 id); the engine has v1 and v2 afterwards."""
    v1 = make_v1()
    publish(client, registry.address, SERVICE, strategy, say=quiet, trust=registry.trust)
    v2 = make_v2()
    publish(client, registry.address, SERVICE, strategy, say=quiet, trust=registry.trust)
    client.images.get(v1).tag(REPO, strategy)
    _drop(client, v2)
    the_plan = planned(client, registry, strategy)
    delta_predicted = the_plan.delta.size if the_plan.delta else 0
    before, start = registry.fetched(), time.perf_counter()
    made = (
        by_delta(client, registry.address, the_plan, print, lambda *_: None)
        if delta_predicted
        else ""
    )
    seconds = time.perf_counter() - start
    delta_measured = registry.fetched() - before
    if made and made != v2:
        raise SystemExit(f"{change}: the delta made {made[:19]}, not {v2[:19]}")
    _drop(client, v2)
    the_plan = planned(client, registry, strategy)
    before = registry.downloaded()
    client.images.pull(f"{registry.address}/{REPO}", strategy)
    pulled = registry.downloaded() - before
    old_ids = client.images.get(v1).attrs["RootFS"]["Layers"]
    new_ids = client.images.get(v2).attrs["RootFS"]["Layers"]
    sizes = [layer["size"] for layer in reg.manifest(registry.address, REPO, strategy)["layers"]]
    changed = sum(size for d, size in zip(new_ids, sizes, strict=True) if d not in old_ids)
    v1_chains = set(chain_ids(old_ids))
    first = next(i for i, c in enumerate(chain_ids(new_ids)) if c not in v1_chains)
    manifest = reg.manifest(registry.address, REPO, strategy)
    from_v1 = sum(sizes[first:]) + manifest["config"]["size"]
    row = Row(
        change,
        strategy,
        the_plan.pull_bytes,
        pulled,
        delta_predicted,
        delta_measured,
        seconds,
        changed,
        from_v1,
    )
    return row, v1, v2


@contextmanager
def probe() -> Iterator[Path]:
    """A checkout with a one-line code change (a copy: the tree itself stays as it is)."""
    with checkout_copy() as code:
        (code / "services" / "_bench_probe.py").write_text(f"CHANGED = {time.time_ns()}\n")
        yield code


def code_change(client: docker.DockerClient, strategy: str) -> Callable[[], str]:
    def v2() -> str:
        with probe() as code:
            return built(client, strategy, code)

    return v2


def old_wheel(client: docker.DockerClient) -> str:
    """Multi-stage storage with the oldest tinydb 4.8 (the wheelhouse fetches it too)."""
    real = build_module.project.requirements

    def pinned(extras: tuple[str, ...], root: Path = ROOT) -> list[str]:
        return [OLD_TINYDB if r.startswith("tinydb") else r for r in real(extras, root)]

    try:
        with mock.patch.object(build_module.project, "requirements", pinned):
            return built(client, "multistage")
    finally:
        for wheel in (build_module.WHEELHOUSE / build_module.HOST_ARCH).glob("tinydb-4.8.0-*"):
            wheel.unlink()  # the next builds take the newest again


@contextmanager
def changed_runtime(client: docker.DockerClient) -> Iterator[None]:
    """Builds inside are on the runtime image with one Debian package more (the old one
    is put back after; the changed one stays, as their parent)."""
    debian, python, _ = hierarchy(build_module.HOST_ARCH)
    runtime = client.images.get(python.tag)
    recipe = (ROOT / "dockerfiles/base/python.Dockerfile").read_text()
    changed = recipe.replace("python3 ca-certificates", "python3 ca-certificates less")
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Dockerfile").write_text(changed)
        other, _ = client.images.build(
            path=context,
            buildargs={"BASE": debian.tag},
            # The label the hierarchy checks, or the build would put the old one back.
            labels={RECIPE_LABEL: runtime.labels[RECIPE_LABEL]},
            rm=True,
            forcerm=True,
        )
    other.tag(python.tag)
    try:
        yield
    finally:
        runtime.tag(python.tag)


def runtime_change(client: docker.DockerClient) -> Callable[[], str]:
    """v2: storage on a runtime image with one Debian package more."""

    def v2() -> str:
        with changed_runtime(client):
            return built(client, "multistage")

    return v2


def planned(client: docker.DockerClient, registry: LocalRegistry, strategy: str) -> Plan:
    """The plan of a gateway that trusts the registry's releases."""
    return plan(
        client,
        registry.address,
        SERVICE,
        strategy,
        trust=registry.policy(registry.folder / "gateway"),
    )


def after_delta(client: docker.DockerClient, registry: LocalRegistry, work: Path) -> None:
    """The update after a delta update, on a gateway engine of its own (one that never
    pushed these images, as on a gateway): storage v1 pulled, v2 (one Debian package
    more in the runtime) made from its bundle, then v3 (a one-line code change on v2,
    no bundle published). The engine's pull of v3 downloads again the layers the delta
    loaded; fetching only the layers the gateway lacks does not."""
    from services.images.update import by_layers
    from testkit.flaky_link import FlakyLink
    from testkit.private_engine import PrivateEngine

    (work / "gateway").mkdir()
    engine = PrivateEngine(work / "gateway")
    link = FlakyLink(registry.address, engine.listen(int(registry.address.rsplit(":", 1)[1])))
    gateway = engine.client()
    try:
        built(client, "multistage")
        publish(client, registry.address, SERVICE, "multistage", say=quiet, trust=registry.trust)
        gateway.images.pull(f"{registry.address}/{REPO}", "multistage").tag(REPO, "multistage")
        with changed_runtime(client):
            built(client, "multistage")
            publish(
                client, registry.address, SERVICE, "multistage", say=quiet, trust=registry.trust
            )
            v2_plan = planned(gateway, registry, "multistage")
            if not by_delta(gateway, registry.address, v2_plan, print, lambda *_: None):
                raise SystemExit("the delta to v2 did not apply")
            with probe() as code:
                v3 = built(client, "multistage", code)
            registry.push(client, v3, SERVICE, "multistage")
        the_plan = planned(gateway, registry, "multistage")
        before = registry.fetched()
        if by_layers(gateway, registry.address, the_plan, print, lambda *_: None) != v3:
            raise SystemExit("fetching v3's missing layers did not make v3")
        fetched = registry.fetched() - before
        gateway.images.remove(the_plan.reference, force=True, noprune=True)
        before = registry.downloaded()
        gateway.images.pull(f"{registry.address}/{REPO}", "multistage")
        pulled = registry.downloaded() - before
    finally:
        link.close()
        engine.stop()
        shutil.rmtree(work / "gateway", ignore_errors=True)
    print("\nThe update after a delta update (v2 by delta, v3 a code change): bytes on the wire")
    print(f"{'way':<44}{'predicted':>12}{'measured':>12}")
    fetch = the_plan.fetch_bytes or 0
    for way, predicted, measured in (
        ("the engine's pull", the_plan.pull_bytes, pulled),
        (
            f"only the layers the gateway lacks{' (used)' * (the_plan.method == 'layers')}",
            fetch,
            fetched,
        ),
    ):
        print(f"{way:<44}{predicted:>12,}{measured:>12,}")
    print(
        f"a plan by layer chains alone said {fetch:,} B for the pull: {pulled / max(fetch, 1):.1f}x"
        f" too few; the missing layers alone: {pulled / max(fetched, 1):.1f}x fewer than the pull"
    )


def changed_layers(
    client: docker.DockerClient, v1: str, v2: str, folder: Path
) -> list[tuple[Path, Path]]:
    """(old tar, new tar) of each layer whose content changed, by position."""
    old_ids = client.images.get(v1).attrs["RootFS"]["Layers"]
    new_ids = client.images.get(v2).attrs["RootFS"]["Layers"]
    changed = dict.fromkeys(
        i for i, d in enumerate(new_ids) if d not in old_ids and i < len(old_ids)
    )
    (folder / "old").mkdir(parents=True)
    (folder / "new").mkdir()
    before = save(client, v1, folder / "old", changed).layers
    after = save(client, v2, folder / "new", changed).layers
    return [(before[i], after[i]) for i in sorted(changed)]


def methods(pairs: list[tuple[str, Path, Path]]) -> None:
    import bsdiff4

    from services.images import delta

    ways: list[tuple[str, Callable[[bytes, bytes], bytes], Callable[[bytes, bytes, int], bytes]]]
    ways = [
        ("tar-aware zstd", delta.make_layer, lambda o, d, n: b"".join(delta.patch_layer(o, d, n))),
        ("whole-layer zstd", delta.make, lambda o, d, n: b"".join(delta.patch(o, d, n))),
        ("bsdiff4", bsdiff4.diff, lambda o, d, _: bsdiff4.patch(o, d)),
    ]
    print("\nDelta methods on the changed layers (bytes, seconds to make, seconds to apply)")
    print(f"{'layer':<32}{'size':>12}", end="")
    print("".join(f"{name:>18}{'make':>7}{'apply':>7}" for name, _, _ in ways))
    for name, old_path, new_path in pairs:
        old, new = old_path.read_bytes(), new_path.read_bytes()
        print(f"{name:<32}{len(new):>12,}", end="")
        for _, make, apply in ways:
            t = time.perf_counter()
            made = make(old, new)
            t_make = time.perf_counter() - t
            t = time.perf_counter()
            assert apply(old, made, len(new)) == new
            t_apply = time.perf_counter() - t
            print(f"{len(made):>18,}{t_make:>7.2f}{t_apply:>7.2f}", end="")
        print()


APPLY = """
import mmap, sys, time
from services.images import delta
old_path, delta_path, length, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
with open(old_path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as old:
    payload = open(delta_path, "rb").read()
    part = delta.Part(kind, 0, len(payload), length, "", len(old))
    made = sum(len(p) for p in delta.made_by(part, old, payload))
    assert made == length
    lines = open("/proc/self/status").read().splitlines()
    status = dict(x.split(":", 1) for x in lines if x.startswith(("VmHWM", "RssAnon")))
seconds = time.perf_counter() - start
print(seconds, int(status["VmHWM"].split()[0]), int(status["RssAnon"].split()[0]))
"""


def edited(layer: bytes) -> bytes:
    """The layer with files in its middle rewritten (250 KB, sizes kept) and a 50 KB
    file added near its first quarter: a package upgraded, as a tar (so still a tar)."""
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        files = [m for m in tar if m.isreg() and 4096 <= m.size <= 200_000]
    rng = random.Random(1)
    new = bytearray(layer)
    rewritten = 0
    for m in files[len(files) // 2 :]:
        new[m.offset_data : m.offset_data + m.size] = rng.randbytes(m.size)
        rewritten += m.size
        if rewritten >= 250_000:
            break
    added = min(files, key=lambda m: abs(m.size - 50_000))
    entry = layer[added.offset : added.offset_data + -(-added.size // 512) * 512]
    at = files[len(files) // 4].offset
    return bytes(new[:at] + entry + new[at:])


def apply_memory(client: docker.DockerClient, v1: str, folder: Path) -> None:
    from services.images import delta

    biggest = folder / "layers"
    biggest.mkdir()
    layers = save(client, v1, biggest).layers
    old_path = max(layers.values(), key=lambda p: p.stat().st_size)
    old = old_path.read_bytes()
    new = edited(old)
    print(f"\nApplying a delta to a {len(old) / 1e6:.0f} MB basis layer (each in a fresh process)")
    print(f"{'method':<28}{'delta bytes':>14}{'seconds':>9}{'peak RSS MB':>13}{'anon MB':>9}")
    for method, kind, made in (
        ("tar-aware zstd (used)", "layer", delta.make_layer(old, new)),
        ("whole-layer zstd", "delta", delta.make(old, new)),
    ):
        delta_path = folder / f"delta-{kind}"
        delta_path.write_bytes(made)
        out = subprocess.run(
            [sys.executable, "-c", APPLY, str(old_path), str(delta_path), str(len(new)), kind],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        seconds, hwm, anon = out.stdout.split()
        print(
            f"{method:<28}{len(made):>14,}{float(seconds):>9.2f}"
            f"{int(hwm) / 1024:>13.0f}{int(anon) / 1024:>9.0f}"
        )
    print("goals: <= 2 s, <= 200 MB peak RSS")


def show(r: Row) -> None:
    exact = r.pull_predicted == r.pull_measured and r.delta_predicted == r.delta_measured
    print(
        f"{r.change:<25}{r.strategy:<13}{r.from_v1:>12,}{r.changed:>12,}"
        f"{r.delta_measured:>10,}{r.delta_measured / max(r.from_v1, 1):>8.4f}"
        f"{r.delta_measured / max(r.changed, 1):>9.4f}{r.delta_seconds:>6.1f} "
        f"{'yes' if exact else 'NO'}"
    )


def main() -> None:
    client = connect(timeout=900)
    registry = LocalRegistry()
    pairs: list[tuple[str, Path, Path]] = []
    work = Path(tempfile.mkdtemp(prefix="agile-bench-deltas-"))
    print(
        f"\nUpdate of {SERVICE}: bytes on the wire, plain pull against delta "
        "(pull: from v1; exact: plan = bytes at the registry, both ways)"
    )
    print(
        f"{'change':<25}{'strategy':<13}{'pull':>12}{'changed':>12}{'delta':>10}"
        f"{'/pull':>8}{'/changed':>9}{'s':>6} exact"
    )
    chosen = set(sys.argv[1:]) - {"--quick"} or {"code", "wheel", "runtime", "after"}
    if "--quick" in sys.argv[1:]:
        chosen = {"wheel"}
    try:
        for strategy in STRATEGIES if "code" in chosen else ():
            row, v1, v2 = measure(
                client,
                registry,
                "one-line code change",
                strategy,
                partial(built, client, strategy),
                code_change(client, strategy),
            )
            show(row)
            if strategy in ("multistage", "squashed-all"):
                for n, (a, b) in enumerate(
                    changed_layers(client, v1, v2, work / f"code-{strategy}")
                ):
                    pairs.append((f"code change, {strategy} #{n}", a, b))
        if "wheel" in chosen:
            row, v1, v2 = measure(
                client,
                registry,
                "one wheel upgraded",
                "multistage",
                lambda: old_wheel(client),
                lambda: built(client, "multistage"),
            )
            show(row)
            for n, (a, b) in enumerate(changed_layers(client, v1, v2, work / "wheel")):
                pairs.append((f"wheel upgraded #{n}", a, b))
        if "runtime" in chosen:
            row, v1, v2 = measure(
                client,
                registry,
                "one Debian package more",
                "multistage",
                lambda: built(client, "multistage"),
                runtime_change(client),
            )
            show(row)
            for n, (a, b) in enumerate(changed_layers(client, v1, v2, work / "runtime")):
                pairs.append((f"Debian package #{n}", a, b))
        if "after" in chosen:
            after_delta(client, registry, work)
        built(client, "multistage")  # back to the current code
    finally:
        registry.stop()
    print(
        "goals: code change <= 2,000 B (multistage), <= 20,000 B (squashed-all); "
        "wheel <= 0.20 of changed; Debian package <= 0.10 of changed"
    )

    methods(pairs)
    apply_memory(client, client.images.get(f"{REPO}:multistage").id, work)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(peak RSS of this process: {peak:.0f} MB)")


if __name__ == "__main__":
    main()
