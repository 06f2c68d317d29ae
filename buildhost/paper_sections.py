"""The paper report's later sections, past the paper's own figures: build times (its
claim), a fix's way to the gateway (its future work), a second architecture, and delta
updates over the project's history — each as markdown, claims and agile-tui's charts."""

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TypeVar

from buildhost.paper_rows import BuildTime, Fix, HistoryUpdate, Panel, Pull, Size, mean, mean_sd

T = TypeVar("T")
STEPS = ("cold", "code", "dependency", "base")
# The future work's goals for a one-line fix, multi-stage with deltas at 2 Mbit/s.
GOAL_RATE, GOAL_TOTAL_S, GOAL_TRANSFER_S, GOAL_APPLY_S = 2.0, 60.0, 1.0, 2.0


Key = tuple[object, ...]


def _groups(rows: Iterable[T], key: Callable[[T], Key]) -> dict[Key, list[T]]:
    out: dict[Key, list[T]] = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out


# -- build times --


def build_lines(builds: list[BuildTime]) -> list[str]:
    if not builds:
        return []
    lines = [
        "## Build times: each service on its own bases against the shared hierarchy",
        "",
        f"{builds[0].images} image(s) built on this machine's engine with nothing cached "
        "(cold: every base from the imported Debian), then after each change; seconds, "
        "mean ± sd over the runs. A foreign architecture builds under qemu-user-static: "
        "emulation inflates its absolute times, only its ratios compare.",
        "",
        "| arch | strategy | step | own bases s | shared s | shared / own |",
        "|---|---|---|---:|---:|---:|",
    ]
    by = _groups(builds, lambda b: (b.arch, b.strategy, b.step, b.bases))
    for arch, strategy in dict.fromkeys((b.arch, b.strategy) for b in builds):
        for step in STEPS:
            own = [b.seconds for b in by.get((arch, strategy, step, "own"), [])]
            shared = [b.seconds for b in by.get((arch, strategy, step, "shared"), [])]
            if own and shared:
                lines.append(
                    f"| {arch} | {strategy} | {step} | {mean_sd(own)} | {mean_sd(shared)} | "
                    f"{mean(shared) / mean(own):.2f} |"
                )
    return lines


def build_claims(builds: list[BuildTime]) -> list[str]:
    """The paper's: the shared hierarchy reduces build times — per architecture and
    strategy, cold and over the changes together, past the runs' spread."""
    said = []
    totals: dict[Key, list[float]] = defaultdict(list)  # per run: every step's seconds
    for (arch, strategy, bases, _), rows in _groups(
        builds, lambda b: (b.arch, b.strategy, b.bases, b.run)
    ).items():
        totals[(arch, strategy, bases)].append(sum(b.seconds for b in rows))
    steps = _groups(builds, lambda b: (b.arch, b.strategy, b.bases, b.step))
    for arch, strategy in dict.fromkeys((b.arch, b.strategy) for b in builds):
        runs = [totals.get((arch, strategy, bases), []) for bases in ("own", "shared")]
        if not all(runs):
            continue
        own, shared = (mean(r) for r in runs)
        spread = max(statistics.stdev(r) if len(r) > 1 else 0.0 for r in runs)
        margin = max(2 * spread, 0.05 * own)  # one run: no spread to go by
        verdict = (
            "holds"
            if own - shared > margin
            else "does not hold: no difference past the runs' spread"
            if abs(own - shared) <= margin
            else "does not hold: the shared hierarchy builds slower"
        )
        cold = [
            mean(b.seconds for b in steps[(arch, strategy, x, "cold")]) for x in ("own", "shared")
        ]
        said.append(
            f"build times ({arch}, {strategy}, {builds[0].images} image(s)): the shared "
            f"hierarchy builds everything in {shared:.0f} s against {own:.0f} s on bases of "
            f"their own ({100 * (shared - own) / own:+.0f} %; cold {cold[1]:.0f} s vs "
            f"{cold[0]:.0f} s) — {verdict}"
            + (" (emulated: compare ratios only)" if arch != "amd64" else "")
        )
    return said


def build_panels(builds: list[BuildTime]) -> list[Panel]:
    panels = []
    for arch in dict.fromkeys(b.arch for b in builds):
        strategies = list(dict.fromkeys(b.strategy for b in builds if b.arch == arch))
        cold = {
            bases: [
                mean(
                    b.seconds
                    for b in builds
                    if (b.arch, b.strategy, b.bases, b.step) == (arch, st, bases, "cold")
                )
                for st in strategies
            ]
            for bases in ("own", "shared")
        }
        panels.append(
            Panel(
                f"Build times · {arch}, cold",
                strategies,
                cold["own"],
                cold["shared"],
                ("own bases", "shared"),
                "seconds to build",
            )
        )
    return panels


# -- a fix's way to the gateway --

FIX_STEPS = ("build", "publish", "plan", "transfer", "apply", "switch", "health")


def fix_lines(fixes: list[Fix]) -> list[str]:
    if not fixes:
        return []
    lines = [
        "## A fix's way to the gateway: one code line, commit to healthy",
        "",
        "Each step's seconds (mean of the runs) on a gateway engine of its own through the "
        "emulated link; the update service's prediction (the transfer: a fix's few KB teach "
        "no rate, so the link's as `updater:link` sets it, and the time each download costs "
        "besides its bytes as learnt from the fixes before) beside the measured transfer "
        "and total.",
        "",
        "A delta's basis is the layers the delta before made, kept on the gateway, or "
        "(the first delta after a pull) the engine's `docker save` of the running image.",
        "",
        "| service | strategy | Mbit/s | way | basis | bytes | "
        + " | ".join(FIX_STEPS)
        + " | predicted transfer | total s |",
        "|---|---|---:|---|---|---:|" + "---:|" * (len(FIX_STEPS) + 2),
    ]
    for (service, strategy, rate, basis), rows in _groups(
        fixes, lambda f: (f.service, f.strategy, f.rate_mbit, f.basis)
    ).items():
        steps = [mean(getattr(f, f"{step}_s") for f in rows) for step in FIX_STEPS]
        lines.append(
            f"| {service} | {strategy} | {rate:g} | {rows[-1].method} | {basis or '-'} | "
            f"{mean(f.download_bytes for f in rows):,.0f} | "
            + " | ".join(f"{s:.2f}" for s in steps)
            + f" | {mean(f.predicted_s for f in rows):.2f}"
            + f" | {mean_sd([f.total_s for f in rows])} |"
        )
    return lines


def fix_claims(fixes: list[Fix]) -> list[str]:
    said = []
    goal = [f for f in fixes if (f.strategy, f.rate_mbit) == ("multistage", GOAL_RATE)]
    if goal:
        total = max(f.total_s for f in goal)
        transfer = max(f.transfer_s for f in goal)
        # A gateway's fixes after its first each find the basis the one before left; the
        # first after a pull reads it from the engine, said apart.
        first = [f for f in goal if f.basis == "engine"]
        later = [f for f in goal if f.basis != "engine"]
        apply = max(f.apply_s for f in later or first)
        ways = ", ".join(sorted({f.method for f in goal}))
        met = total < GOAL_TOTAL_S and transfer < GOAL_TRANSFER_S and apply < GOAL_APPLY_S
        said.append(
            f"a one-line fix at {GOAL_RATE:g} Mbit/s (multi-stage, by {ways}): commit to "
            f"healthy at most {total:.1f} s (goal < {GOAL_TOTAL_S:g} s), the transfer "
            f"{transfer:.2f} s (< {GOAL_TRANSFER_S:g} s), patch and load on the gateway "
            f"{apply:.2f} s (< {GOAL_APPLY_S:g} s) over {len(goal)} run(s) — "
            + ("met" if met else "not met")
            + (
                f"; the first delta after a pull, its basis from docker save: "
                f"{max(f.apply_s for f in first):.2f} s"
                if first and later
                else ""
            )
        )
    for (strategy, rate), rows in _groups(fixes, lambda f: (f.strategy, f.rate_mbit)).items():
        gateway = mean(f.total_s - f.build_s - f.publish_s for f in rows)
        said.append(
            f"a fix by {strategy} at {rate:g} Mbit/s: {mean(f.total_s for f in rows):.1f} s "
            f"commit to healthy, of it {gateway:.1f} s on the gateway"
        )
    return said


def fix_panels(fixes: list[Fix]) -> list[Panel]:
    panels = []
    for rate in dict.fromkeys(f.rate_mbit for f in fixes):
        mine = _groups((f for f in fixes if f.rate_mbit == rate), lambda f: (f.strategy,))
        panels.append(
            Panel(
                f"A fix's way · {rate:g} Mbit/s",
                [str(k[0]) for k in mine],
                [mean(f.total_s for f in rows) for rows in mine.values()],
                [mean(f.total_s - f.build_s - f.publish_s for f in rows) for rows in mine.values()],
                ("to healthy", "on gateway"),
                "seconds",
            )
        )
    return panels


# -- a second architecture --


def arch_lines(sizes: list[Size], pulls: list[Pull]) -> list[str]:
    """Table I and the whole download per architecture, side by side."""
    arches = list(dict.fromkeys(s.arch for s in sizes))
    if len(arches) < 2:
        return []
    lines = [
        "## A second architecture: what a Raspberry Pi downloads",
        "",
        "Image size (Table I) and the newest version downloaded whole, per architecture.",
        "",
        "| service | strategy | "
        + " | ".join(f"{a} MB" for a in arches)
        + " | Mbit/s | "
        + " | ".join(f"{a} s" for a in arches)
        + " |",
        "|---|---|" + "---:|" * len(arches) + "---:|" + "---:|" * len(arches),
    ]
    size = {(s.service, s.strategy, s.arch): s.bytes for s in sizes}
    for service, strategy in dict.fromkeys((s.service, s.strategy) for s in sizes):
        newest = {
            (p.arch, p.rate_mbit): p.measured_s
            for p in pulls
            if (p.service, p.strategy, p.kind) == (service, strategy, "absolute")
            and p.version == max(q.version for q in pulls if q.service == service)
        }
        rates = sorted({r for _, r in newest}, reverse=True) or [0.0]
        for rate in rates:
            mb = " | ".join(
                f"{size[(service, strategy, a)] / 1e6:.1f}"
                if (service, strategy, a) in size
                else "—"
                for a in arches
            )
            secs = " | ".join(
                f"{newest[(a, rate)]:.2f}" if (a, rate) in newest else "—" for a in arches
            )
            lines.append(f"| {service} | {strategy} | {mb} | {rate:g} | {secs} |")
    return lines


# -- delta updates over the project's history --


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def history_lines(history: list[HistoryUpdate]) -> list[str]:
    if not history:
        return []
    lines = [
        "## Delta updates over this project's history",
        "",
        "Each commit that changed the image, built and published in turn; a gateway takes "
        "each as the update service does. Bytes per update: median, p90 and worst.",
        "",
        "| service | strategy | updates | way | median | p90 | worst | / pull median "
        "| / pull worst |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (service, strategy), rows in _groups(history, lambda h: (h.service, h.strategy)).items():
        for way, of in (
            ("delta", lambda h: h.delta_bytes),
            ("missing layers", lambda h: h.layers_bytes),
            ("pull", lambda h: h.pull_bytes),
            ("taken", lambda h: h.fetched_bytes),
        ):
            counted = [h for h in rows if way != "delta" or h.delta_bytes]  # one published
            if not counted:
                continue
            got = [of(h) for h in counted]
            ratios = [of(h) / h.pull_bytes for h in counted if h.pull_bytes]
            lines.append(
                f"| {service} | {strategy} | {len(rows)} | {way} | {statistics.median(got):,.0f} | "
                f"{_percentile(got, 0.9):,.0f} | {max(got):,} | "
                f"{statistics.median(ratios):.3f} | {max(ratios):.3f} |"
            )
    return lines


def history_claims(history: list[HistoryUpdate]) -> list[str]:
    said = []
    for (service, strategy), rows in _groups(history, lambda h: (h.service, h.strategy)).items():

        def smallest(h: HistoryUpdate) -> int:
            return min(b for b in (h.delta_bytes, h.layers_bytes, h.pull_bytes) if b)

        off = [
            h
            for h in rows
            if smallest(h) < h.pull_bytes and h.fetched_bytes > smallest(h) * 1.05 + 4096
        ]
        bigger = [h for h in rows if h.delta_bytes > h.pull_bytes]
        ratios = [h.delta_bytes / h.pull_bytes for h in rows if h.delta_bytes and h.pull_bytes]
        said.append(
            f"{service} {strategy} over {len(rows)} updates of its history: the update took "
            f"the smallest way each time — "
            + ("holds" if not off else f"does not hold ({', '.join(h.commit for h in off)})")
            + (
                f"; deltas were {100 * statistics.median(ratios):.2f} % of the pull (median), "
                f"{100 * max(ratios):.1f} % at worst; {len(bigger)} cost more than the pull"
                if ratios
                else "; no delta was published"
            )
        )
    return said
