"""Images: what is on the engine, layer by layer, and which bytes images share."""

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer

from agile_tui.client.errors import ClientError
from agile_tui.client.images import LABEL
from agile_tui.client.stack import format_bytes
from agile_tui.models.images import ImagesModel, ImagesView
from agile_tui.roles import lacking
from agile_tui.screens.build import BuildScreen
from agile_tui.screens.build_modal import BuildModal
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.screens.paper_report import PaperReportScreen
from agile_tui.screens.updates import UpdatesScreen
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable
from agile_tui.widgets.problem_banner import ProblemBanner

IMAGE_COLUMNS = ("Image", "Size", "Shared", "Unique", "Layers")
STACK_COLUMNS = ("Strategy", "Images", "Sum", "On disk", "Saved")
LAYER_COLUMNS = ("Size", "Created by")


class ImagesScreen(GatewayScreen):
    BINDINGS = [
        Binding("b", "build", "Build", id="images.build"),
        Binding("U", "updates", "Updates", id="images.updates"),
        Binding("u", "reload", "Reload", id="images.reload"),
        Binding("P", "prune", "Prune untagged", id="images.prune"),
        Binding("r", "paper_report", "Paper report", id="images.paper"),
    ]
    DEFAULT_CSS = """
    ImagesScreen #layers { height: 1fr; }
    ImagesScreen #stacks { height: auto; max-height: 7; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.model = ImagesModel(lambda: self.app.engine)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if lacking(self, action) else True  # dimmed: a role's

    def compose(self) -> ComposeResult:
        yield GatewayBar("Images")
        yield ProblemBanner("engine")
        with Vertical():
            images = LiveTable(IMAGE_COLUMNS, id="images")
            images.border_title = "Images"
            yield images
            stacks = LiveTable(STACK_COLUMNS, id="stacks")
            stacks.border_title = "The stack per build strategy"
            yield stacks
            layers = LiveTable(LAYER_COLUMNS, id="layers")
            layers.border_title = "Layers"
            yield layers
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#images").focus()
        self.watch(self.app, "engine_state", self._engine_changed)

    def _engine_changed(self, _state: str) -> None:
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    @work(thread=True, exclusive=True, group="images")
    def action_reload(self) -> None:
        try:
            view = self.model.fetch()
        except ClientError as exc:
            self.app.call_from_thread(self.notify, f"Docker engine: {exc}", severity="error")
            return
        if view is None:
            self.app.call_from_thread(self._no_engine)
        else:
            self.app.call_from_thread(self._show, view)

    def _no_engine(self) -> None:
        table = self.query_one("#images", LiveTable)
        table.border_subtitle = f"Docker engine {self.app.engine_state}"

    def _show(self, view: ImagesView) -> None:
        images = view.images
        table = self.query_one("#images", LiveTable)
        table.border_subtitle = (
            f"{len(images)} images · {format_bytes(view.total)} apart · "
            f"{format_bytes(view.on_disk)} on disk"
        )
        table.sync(
            {
                i.id: (
                    i.name,
                    format_bytes(i.size),
                    format_bytes(i.shared_bytes),
                    format_bytes(i.unique_bytes),
                    str(len(i.layers)),
                )
                for i in images
            }
        )
        self.query_one("#stacks", LiveTable).sync(
            {
                c.strategy: (
                    c.strategy,
                    str(c.images),
                    format_bytes(c.total),
                    format_bytes(c.on_disk),
                    f"{c.saved:.0%}",
                )
                for c in view.stacks
            }
        )
        self._show_layers()

    def action_build(self) -> None:
        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                self.app.push_screen(BuildScreen(*choice))

        key = self.query_one("#images", LiveTable).selected_key()
        image = self.model.view.image(key)
        # Offer the selected image's service and strategy first, when it is one of ours.
        labels = image.labels if image else {}
        self.app.push_screen(
            BuildModal(
                labels.get(f"{LABEL}.service", "storage"),
                labels.get(f"{LABEL}.strategy", "multistage"),
            ),
            chosen,
        )

    def action_prune(self) -> None:
        untagged = self.model.untagged()
        if self.app.engine is None or not untagged:
            self.notify("no untagged images")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.prune()

        self.app.push_screen(
            ConfirmModal(
                f"Remove {len(untagged)} untagged images (replaced versions, build stages; "
                "the next build makes its stages again)?"
            ),
            answered,
        )

    @work(thread=True, exclusive=True, group="prune")
    def prune(self) -> None:
        try:
            count, freed = self.model.prune()
        except ClientError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(
            self.notify, f"{count} images removed, {format_bytes(freed)} freed"
        )
        self.app.call_from_thread(self.action_reload)

    def action_updates(self) -> None:
        self.app.push_screen(UpdatesScreen())

    def action_paper_report(self) -> None:
        self.app.push_screen(PaperReportScreen())

    def on_data_table_row_highlighted(self) -> None:
        self._show_layers()

    def _show_layers(self) -> None:
        key = self.query_one("#images", LiveTable).selected_key()
        image = self.model.view.image(key)
        layers = self.query_one("#layers", LiveTable)
        layers.border_title = f"Layers · {image.name}" if image else "Layers"
        if image is None:
            layers.sync({})
            return
        layers.sync(
            {
                f"{n}:{x.chain_id}": (format_bytes(x.size), " ".join(x.created_by.split())[:200])
                for n, x in enumerate(reversed(image.layers))
            }
        )
