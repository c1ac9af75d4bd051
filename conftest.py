"""Fixtures shared by every test layer.

The unit tier's platform is in-process: moto's ``mock_aws`` for S3 (fresh per
test) and one sqlite MLflow store per session (its schema migration is the
expensive part), with an experiment and model name unique to each test.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from metro_e2e.config import MetroConfig

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def metro_sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite MLflow store for the whole session (per xdist worker)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def metro_unit_platform(metro_sqlite_uri: str) -> MetroConfig:
    """A fresh moto S3 with ``ml-models`` and ``ml-data``, and names no other test uses."""
    from metro_e2e.demo import in_process_platform  # MLflow and moto: imported by the tests that use them only

    tag = uuid.uuid4().hex[:10]
    with in_process_platform(metro_sqlite_uri, experiment=f"exp-{tag}", model_name=f"model-{tag}") as config:
        yield config


@pytest.fixture
def metro_fixtures() -> Path:
    return FIXTURES
