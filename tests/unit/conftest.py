"""Unit-tier fixtures: one Iris model trained, promoted and loaded once per session."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from metro_e2e import data, promotion, training
from metro_e2e.demo import in_process_platform
from metro_e2e.storage import Storage


@dataclass(frozen=True)
class IrisModel:
    model: object  # mlflow.pyfunc.PyFuncModel
    frame: pd.DataFrame
    features: pd.DataFrame
    version: str


@pytest.fixture(scope="session")
def metro_iris_model(metro_sqlite_uri, tmp_path_factory) -> IrisModel:
    """Train, register and promote once; load ``latest/`` the way the serving pod does."""
    import mlflow.pyfunc

    folder = tmp_path_factory.mktemp("serving")
    with in_process_platform(metro_sqlite_uri, experiment="session-exp", model_name="session-model") as config:
        storage = Storage(config)
        frame = data.iris_frame()
        result = training.train(config, data.split(frame))
        promotion.promote(config, version=result.version, storage=storage)
        promotion.download_latest(storage, bucket=config.models_bucket, latest_prefix=config.latest_prefix, dest=folder)
    return IrisModel(mlflow.pyfunc.load_model(str(folder)), frame, frame.drop(columns=["target"]), result.version)
