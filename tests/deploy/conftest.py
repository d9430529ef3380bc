"""The deploy targets run against a real moto server (see tests/infra/moto.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.moto import aws, moto_server  # noqa: F401 - fixtures
from infra.oci_registry import OciRegistry, tiny_image
from infra.registry import local_registry


@pytest.fixture(scope="session")
def registry() -> Iterator[OciRegistry]:
    """A CNCF distribution registry on 127.0.0.1 (ECR's registry endpoint, which moto lacks)."""
    with local_registry() as host:
        yield OciRegistry(host)


@pytest.fixture(scope="session")
def small_image() -> str:
    return tiny_image()


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state.json"
