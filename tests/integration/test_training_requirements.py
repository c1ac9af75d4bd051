"""The model ``train`` logs declares what it needs explicitly (MLflow's inference costs about 5 s per model):
this keeps the explicit declaration equal to what MLflow infers for the same model, so serving sees the same
``requirements.txt``, ``conda.yaml`` and signature either way. It pays for one real inference (a subprocess that
loads the model), which is why it is here and not in the unit tier."""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.sklearn
from mlflow.models import Model

from metro_e2e import data, training
from metro_e2e.registry import client_version, mlflow_session


def _logged(model_uri: str, into: Path) -> tuple[str, str, dict]:
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(into)))
    signature = Model.load(str(local)).signature
    return (local / "requirements.txt").read_text(), (local / "conda.yaml").read_text(), signature.to_dict()


def test_the_explicit_requirements_and_signature_are_what_mlflow_infers(metro_unit_platform, tmp_path):
    config = metro_unit_platform
    parts = data.split(data.iris_frame())
    result = training.train(config, parts)
    model, _ = training.fit(parts)
    with mlflow_session(config):
        given = _logged(result.model_uri, tmp_path / "given")
        with mlflow.start_run(experiment_id=result.experiment_id):
            inferred_uri = mlflow.sklearn.log_model(
                model,
                input_example=parts.train_X.head(3),
                **training.log_model_kwargs(client_version(), config.artifact_name),
            ).model_uri
        inferred = _logged(inferred_uri, tmp_path / "inferred")
    assert given[0].splitlines() == inferred[0].splitlines(), "requirements.txt differs from MLflow's inference"
    assert given[1] == inferred[1], "conda.yaml differs from MLflow's inference"
    assert given[2] == inferred[2], "the signature differs from MLflow's inference"
    assert [line.split("==")[0] for line in given[0].splitlines()] == list(training.MODEL_REQUIREMENTS)
