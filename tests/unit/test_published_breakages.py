"""Regressions for the PLATFORM.md breakages this layer touches (1 and 4 live in test_registry/test_training).

Each test shows the published behaviour failing and ours working.
"""

from __future__ import annotations

import pytest

from metro_e2e import data, registry, training
from metro_e2e.errors import StorageError
from metro_e2e.storage import Storage

needs_mlflow3 = pytest.mark.skipif(registry.client_major() < 3, reason="needs an MLflow 3.x client: tox -e mlflow3")


@needs_mlflow3
def test_breakage_2_guide_log_model_is_refused_by_mlflow3_ours_logs(metro_unit_platform):
    import mlflow
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from sklearn.tree import DecisionTreeClassifier

    parts = data.split(data.iris_frame())
    model = DecisionTreeClassifier().fit(parts.train_X, parts.train_y.iloc[:, 0])
    with registry.mlflow_session(metro_unit_platform) as client:
        exp = training.ensure_experiment(client, metro_unit_platform)
        with mlflow.start_run(experiment_id=exp), pytest.raises(MlflowException, match="(?i)untrusted|skops"):
            mlflow.sklearn.log_model(model, "model")  # the guide's exact call
    result = training.train(metro_unit_platform, parts)
    assert result.version == "1"
    assert result.model_uri.startswith("models:/m-")  # the MLflow 3 logged-model layout


def test_breakage_7_guide_reads_bucket_datasets_but_uploads_to_ml_data(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    data.upload_dataset(storage, data.iris_frame(), bucket="ml-data", key="iris/iris.csv")  # the upload section
    with pytest.raises(StorageError, match="bucket 'datasets' does not exist"):
        data.read_dataset(storage, bucket="datasets", key="iris/iris.csv")  # the training section
    config = metro_unit_platform
    frame = data.read_dataset(storage, bucket=config.data_bucket, key=config.data_key)  # ours: one setting
    assert len(frame) == 150


def test_breakage_7_serving_script_model_name_comes_from_config(metro_unit_platform):
    """The guide's serve script hard-codes mnist_model; ours logs and promotes one configured name."""
    assert metro_unit_platform.artifact_name == "iris-model"
    assert "mnist" not in repr(metro_unit_platform)
