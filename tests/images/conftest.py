"""The base-image hierarchy, built once per test session on the real engine (cached
by recipe digest, so a machine that has it builds nothing)."""

import pytest

from services.images.hierarchy import ensure_hierarchy


@pytest.fixture(scope="session")
def hierarchy(docker_client) -> list[str]:
    return ensure_hierarchy(docker_client)
