"""The Images section's data: the engine's images with their shared and unique bytes,
and what the stack costs per build strategy."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agile_tui.client.errors import EngineError
from agile_tui.client.images import ImageLayers, StackCost, share, stack_costs

if TYPE_CHECKING:  # the Docker SDK stays out of the TUI's start-up
    from agile_tui.client.engine import Engine


@dataclass(frozen=True)
class ImagesView:
    images: list[ImageLayers] = field(default_factory=list)  # tagged first, by name
    total: int = 0  # bytes, each image apart
    on_disk: int = 0  # bytes, layers shared once
    stacks: list[StackCost] = field(default_factory=list)

    def image(self, image_id: str | None) -> ImageLayers | None:
        return next((i for i in self.images if i.id == image_id), None)


class ImagesModel:
    def __init__(self, engine: "Callable[[], Engine | None]") -> None:
        self.engine = engine  # the app's, once it answers
        self.view = ImagesView()

    def fetch(self) -> ImagesView | None:
        """Blocking (a thread's); None while no engine answers; ClientError on failure."""
        engine = self.engine()
        if engine is None:
            return None
        images = engine.images()
        self.view = ImagesView(
            images, sum(i.size for i in images), share(images), stack_costs(images)
        )
        return self.view

    def untagged(self) -> list[ImageLayers]:
        return [i for i in self.view.images if not i.tags]

    def prune(self) -> tuple[int, int]:
        """Blocking: the untagged images removed; (how many, bytes freed)."""
        engine = self.engine()
        if engine is None:
            raise EngineError("no Docker engine answers")
        return engine.prune_untagged()
