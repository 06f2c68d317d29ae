"""`agile-gateway images report`: sizes, layers, unique and shared bytes of the gateway's
images, and what the stack costs on disk per build strategy (with sharing)."""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from services.images.layers import ImageLayers, analyse, bytes_on_disk
from services.images.recipes import LABEL


@dataclass(frozen=True)
class StackCost:
    strategy: str
    images: int
    total: int  # the images' sizes added up
    on_disk: int  # with shared layer chains counted once

    @property
    def saved(self) -> float:
        return 1 - self.on_disk / self.total if self.total else 0.0


def stack_costs(images: list[ImageLayers]) -> list[StackCost]:
    """Per build strategy, the stack made of each service's current image of it
    (agile/SERVICE:STRATEGY)."""
    stacks: dict[str, list[ImageLayers]] = defaultdict(list)
    for image in images:
        strategy = image.labels.get(f"{LABEL}.strategy")
        service = image.labels.get(f"{LABEL}.service")
        if strategy and f"agile/{service}:{strategy}" in image.tags:
            stacks[strategy].append(image)
    return [
        StackCost(strategy, len(members), sum(i.size for i in members), bytes_on_disk(members))
        for strategy, members in sorted(stacks.items())
    ]


def _mb(n: int) -> str:
    return f"{n / 1e6:8.1f} MB"


def report(client: Any) -> str:
    images = [i for i in client.images.list() if any(t.startswith("agile/") for t in i.tags)]
    analysed = analyse([i.attrs for i in images], client.api.history)
    lines = [f"{'IMAGE':<44}{'SIZE':>11}{'LAYERS':>8}{'UNIQUE':>11}{'SHARED':>11}"]
    for image in analysed:
        lines.append(
            f"{image.name:<44}{_mb(image.size)}{len(image.layers):>8}"
            f"{_mb(image.unique_bytes)}{_mb(image.shared_bytes)}"
        )
    if costs := stack_costs(analysed):
        lines += [
            "",
            f"{'STACK (one image per service)':<44}{'SUM':>11}{'ON DISK':>11}{'SAVED':>8}",
        ]
        for cost in costs:
            lines.append(
                f"{cost.strategy:<44}{_mb(cost.total)}{_mb(cost.on_disk)}{cost.saved:>8.0%}"
            )
    return "\n".join(lines)
