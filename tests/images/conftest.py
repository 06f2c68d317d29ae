"""The images tests' fixtures: a registry of the session's."""

from collections.abc import Iterator

import pytest

from testkit.local_registry import LocalRegistry


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Iterator[LocalRegistry]:
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()


@pytest.fixture
def own_registry(tmp_path) -> Iterator[LocalRegistry]:
    """A registry of the test's alone: what it publishes is offered to no other test."""
    (tmp_path / "registry").mkdir()
    registry = LocalRegistry(tmp_path / "registry")
    yield registry
    registry.stop()
