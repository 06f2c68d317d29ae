"""A DataTable that is updated by diff: only changed cells are touched, rows keep their keys."""

from collections.abc import Iterable, Mapping, Sequence

from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist


class LiveTable(DataTable[str]):
    # One key each (home/end are escape sequences, which a slow link can split).
    BINDINGS = [
        Binding("g", "scroll_top", "First row", id="table.first", show=False),
        Binding("G", "scroll_bottom", "Last row", id="table.last", show=False),
    ]
    DEFAULT_CSS = """
    LiveTable {
        height: 1fr;
        border: round $primary 50%;
    }
    LiveTable:focus {
        border: round $primary;
    }
    """

    def __init__(self, columns: Iterable[str], **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]  # passed on as given
        self._column_names = tuple(columns)
        self._rows: dict[str, tuple[str, ...]] = {}
        # Columns exist from the start: rows can arrive before the table is mounted,
        # and a column added after its rows would be sized by its header alone.
        for name in self._column_names:
            self.add_column(name, key=name)

    def sync(self, rows: Mapping[str, Sequence[str]]) -> None:
        """Make the table show `rows` (key -> cells), in their given order."""
        added = False
        with self.app.batch_update():
            for key in [k for k in self._rows if k not in rows]:
                self.remove_row(key)
                del self._rows[key]
            for key, cells in rows.items():
                cells = tuple(str(x) for x in cells)
                old = self._rows.get(key)
                if old is None:
                    self.add_row(*cells, key=key)
                    added = True
                elif old != cells:
                    for name, before, after in zip(self._column_names, old, cells, strict=True):
                        if before != after:
                            self.update_cell(key, name, after, update_width=True)
                self._rows[key] = cells
            if list(self._rows) != list(rows):
                # New rows land at the end; put them where the caller's order says.
                selected = self.selected_key()
                position = {cells: i for i, cells in enumerate(self._rows[k] for k in rows)}
                self.sort(*self._column_names, key=lambda cells: position.get(tuple(cells), 0))
                self._rows = {k: self._rows[k] for k in rows}
                if selected is not None:  # the operator's row stays selected
                    self.move_cursor(row=self.get_row_index(selected))
        if added:
            # Column widths grow on idle, after rows may already have been drawn (and
            # cached) at the old widths: redraw once they are known. Textual 8.2.8 has
            # no public call that drops the row cache.
            self.call_after_refresh(self._redraw_rows)

    def _redraw_rows(self) -> None:
        self._clear_caches()
        self.refresh()

    def selected_key(self) -> str | None:
        if not self._rows or self.cursor_row < 0:
            return None
        try:
            return self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        except (RowDoesNotExist, IndexError):
            return None

    def keys(self) -> list[str]:
        return list(self._rows)
