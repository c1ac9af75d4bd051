"""Train the Iris classifier with MLflow tracking and register it in the model registry.

Works with MLflow 2.x and 3.x clients: on 3.x the model is logged with
``name=`` and cloudpickle serialization, because 3.x defaults to skops, which
refuses a ``DecisionTreeClassifier`` (PLATFORM.md breakage 2) and which the
platform's 2.x serving image cannot load anyway. A 3.x client against a 2.x
server fails with a clear ``TrackingError`` (breakage 4).
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn.tree import DecisionTreeClassifier

from metro_e2e.config import MetroConfig
from metro_e2e.data import Split
from metro_e2e.errors import TrackingError
from metro_e2e.registry import client_version, mlflow_session, tracking_errors

log = logging.getLogger(__name__)

LINEAGE_TAG = "metro_e2e.lineage"
MODEL_TYPE = "DecisionTreeClassifier"
REGISTRATION_WAIT_S = 60
# What the logged model needs to be served, given explicitly: left to itself, MLflow infers it by loading the model
# in a subprocess, about 5 s of every log_model (docs/testing.md "Where the time goes"). These are the distributions
# that inference finds for this classifier; tests/integration/test_training_requirements.py keeps the two equal.
MODEL_REQUIREMENTS = ("mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn", "scipy")


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced."""

    run_id: str
    experiment_id: str
    model_uri: str
    model_name: str
    version: str
    accuracy: float
    lineage: str | None


def log_model_kwargs(mlflow_version: str, artifact_name: str) -> dict[str, Any]:
    """Keyword arguments for ``mlflow.sklearn.log_model`` that work on this client's major version."""
    if int(mlflow_version.split(".")[0]) >= 3:
        return {"name": artifact_name, "serialization_format": "cloudpickle"}
    return {"artifact_path": artifact_name}


def pip_requirements() -> list[str]:
    """``MODEL_REQUIREMENTS`` pinned to the versions installed here, as MLflow's inference writes them."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def log_model(model: DecisionTreeClassifier, example: pd.DataFrame, artifact_name: str):
    """Log ``model`` to the active run with its input example, its signature and ``pip_requirements()`` given
    explicitly (nothing inferred by reloading the model); MLflow's ``ModelInfo``."""
    return mlflow.sklearn.log_model(
        model,
        input_example=example,
        signature=infer_signature(example, pd.Series(model.predict(example))),  # a column, as MLflow infers it
        pip_requirements=pip_requirements(),
        **log_model_kwargs(client_version(), artifact_name),
    )


def ensure_experiment(client, config: MetroConfig) -> str:
    """The id of ``config.experiment``, created (under ``config.artifact_root`` if set) when missing."""
    exp = client.get_experiment_by_name(config.experiment)
    if exp is None:
        location = f"{config.artifact_root.rstrip('/')}/{config.experiment}" if config.artifact_root else None
        try:
            return client.create_experiment(config.experiment, artifact_location=location)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(config.experiment)
    if exp.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {config.experiment!r} is deleted",
            hint="restore it in the MLflow UI or set METRO_EXPERIMENT to another name",
        )
    return exp.experiment_id


def fit(parts: Split, *, seed: int = 42) -> tuple[DecisionTreeClassifier, float]:
    """The classifier ``train`` logs, fitted on ``parts`` (deterministic for a split and seed), and its accuracy."""
    model = DecisionTreeClassifier(random_state=seed)
    model.fit(parts.train_X, parts.train_y.iloc[:, 0])
    return model, float(model.score(parts.test_X, parts.test_y.iloc[:, 0]))


def train(config: MetroConfig, parts: Split, *, lineage: str | None = None, seed: int = 42) -> TrainResult:
    """Fit, log param/metric/model, register a new version of ``config.model_name``."""
    model, accuracy = fit(parts, seed=seed)
    with mlflow_session(config) as client, tracking_errors(config, f"train and register {config.model_name!r}"):
        experiment_id = ensure_experiment(client, config)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_param("model_type", MODEL_TYPE)
            mlflow.log_metric("accuracy", accuracy)
            if lineage:
                mlflow.set_tag(LINEAGE_TAG, lineage)
            info = log_model(model, parts.train_X.head(3), config.artifact_name)
        version = mlflow.register_model(
            info.model_uri,
            config.model_name,
            await_registration_for=REGISTRATION_WAIT_S,
            tags={LINEAGE_TAG: lineage} if lineage else None,
        )
    log.info("run %s: accuracy %.4f, %s version %s", run.info.run_id, accuracy, config.model_name, version.version)
    return TrainResult(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_uri=info.model_uri,
        model_name=config.model_name,
        version=str(version.version),
        accuracy=accuracy,
        lineage=lineage,
    )
