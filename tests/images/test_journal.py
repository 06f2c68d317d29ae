"""The update journal: what an update cut off leaves for its recovery."""

from pathlib import Path

import pytest

from services.images.journal import Entry, Journal
from services.images.update import recover


def test_the_journal_says_where_the_update_is_until_it_ends(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "updater" / "update-journal.json")
    assert journal.read() is None
    entry = Entry("core", "agile", "multistage", "sha256:old", "sha256:new")
    journal.write(entry)
    assert journal.read() == entry
    entry.committed = True
    journal.write(entry)
    assert Journal(journal.path).read() == entry  # on disk, for the next process
    journal.clear()
    assert journal.read() is None
    assert [p.name for p in journal.path.parent.iterdir()] == []  # no temporary left


def test_an_unreadable_journal_is_said_and_removed_not_trusted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "update-journal.json")
    journal.path.write_text('{"service": "core", "proj')
    with pytest.raises(ValueError, match="unreadable"):
        journal.read()
    said: list[str] = []
    assert recover(None, journal, said.append) is None  # type: ignore[arg-type]
    assert "unreadable" in said[0] and not journal.path.exists()
