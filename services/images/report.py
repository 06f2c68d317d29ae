"""`agile-gateway images report`: sizes, layers, unique and shared bytes of the gateway's
images, and what the stack costs on disk per build strategy (with sharing)."""

from collections import defaultdict
from typing import Any

from services.images.build import LABEL
from services.images.layers import ImageLayers, analyse, share


def _mb(n: int) -> str:
    return f"{n / 1e6:8.1f} MB"


def report(client: Any) -> str:
    images = [i for i in client.images.list() if any(t.startswith("agile/") for t in i.tags)]
    analysed = analyse(images, client.api.history)
    by_id = {i.id: i for i in images}
    lines = [f"{'IMAGE':<44}{'SIZE':>11}{'LAYERS':>8}{'UNIQUE':>11}{'SHARED':>11}"]
    for image in analysed:
        lines.append(
            f"{image.name:<44}{_mb(image.size)}{len(image.layers):>8}"
            f"{_mb(image.unique_bytes)}{_mb(image.shared_bytes)}"
        )
    stacks: dict[str, list[ImageLayers]] = defaultdict(list)
    for image in analysed:
        labels = by_id[image.id].labels or {}
        strategy, service = labels.get(f"{LABEL}.strategy"), labels.get(f"{LABEL}.service")
        if strategy and f"agile/{service}:{strategy}" in image.tags:  # the current build only
            stacks[strategy].append(image)
    if stacks:
        lines += [
            "",
            f"{'STACK (one image per service)':<44}{'SUM':>11}{'ON DISK':>11}{'SAVED':>8}",
        ]
        for strategy, members in sorted(stacks.items()):
            total = sum(i.size for i in members)
            on_disk = share(list(members))
            saved = 1 - on_disk / total if total else 0
            lines.append(f"{strategy:<44}{_mb(total)}{_mb(on_disk)}{saved:>8.0%}")
    return "\n".join(lines)
