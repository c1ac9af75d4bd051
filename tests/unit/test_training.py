"""Training: param, metric, model files in S3, one new registered version per run, lineage tag."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient

from metro_e2e import data, training
from metro_e2e.config import load_config
from metro_e2e.errors import AuthError, EndpointUnreachable, TrackingError
from metro_e2e.registry import client_major, translate
from metro_e2e.storage import Storage


def test_train_logs_registers_and_stores_in_ml_models(metro_unit_platform):
    config = metro_unit_platform
    parts = data.split(data.iris_frame())
    first = training.train(config, parts, lineage="kfp-run-123")
    second = training.train(config, parts)
    assert (first.version, second.version) == ("1", "2")
    assert 0.85 <= first.accuracy <= 1.0
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    run = client.get_run(first.run_id)
    assert run.data.params["model_type"] == "DecisionTreeClassifier"
    assert run.data.metrics["accuracy"] == pytest.approx(first.accuracy)
    assert run.data.tags[training.LINEAGE_TAG] == "kfp-run-123"
    assert training.LINEAGE_TAG not in client.get_run(second.run_id).data.tags
    assert client.get_model_version(config.model_name, "1").tags[training.LINEAGE_TAG] == "kfp-run-123"
    keys = Storage(config).list_keys("ml-models", "")
    assert any(k.endswith(f"/{first.run_id}/artifacts/iris-model/MLmodel") for k in keys) or client_major() >= 3
    assert any(k.endswith("MLmodel") for k in keys)


def test_existing_experiment_is_reused_and_deleted_one_is_refused(metro_unit_platform):
    config = metro_unit_platform
    client = MlflowClient(tracking_uri=config.tracking_uri)
    exp_id = client.create_experiment(config.experiment, artifact_location="s3://ml-models/pre")
    assert training.ensure_experiment(client, config) == exp_id
    client.delete_experiment(exp_id)
    with pytest.raises(TrackingError, match="is deleted"):
        training.train(config, data.split(data.iris_frame()))


def test_new_experiment_goes_under_the_artifact_root(metro_unit_platform):
    client = MlflowClient(tracking_uri=metro_unit_platform.tracking_uri)
    exp_id = training.ensure_experiment(client, metro_unit_platform)
    location = client.get_experiment(exp_id).artifact_location
    assert location == f"s3://ml-models/{metro_unit_platform.experiment}"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.20.3", {"artifact_path": "iris-model"}),
        ("2.22.5", {"artifact_path": "iris-model"}),
        ("3.17.2", {"name": "iris-model", "serialization_format": "cloudpickle"}),
    ],
)
def test_log_model_kwargs_per_client_major(version, expected):
    assert training.log_model_kwargs(version, "iris-model") == expected


CONFIG = load_config(environ={"METRO_URL": "http://gw.test"})


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (
            MlflowException(
                "API request to http://gw.test/mlflow/api/2.0/mlflow/experiments/get-by-name failed with "
                "exception HTTPConnectionPool(host='gw.test', port=80): Max retries exceeded"
            ),
            EndpointUnreachable,
            "did not answer",
        ),
        (
            MlflowException(
                "API request to http://gw.test/mlflow/api/2.0/mlflow/experiments/create failed with exception "
                "HTTPConnectionPool(host='gw.test', port=80): Max retries exceeded with url: /x (Caused by "
                "NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))"
            ),
            EndpointUnreachable,
            "connection refused: nothing listens there",
        ),
        (
            MlflowException(
                "API request to http://gw.test/mlflow/api/2.0/mlflow/experiments/create failed with exception "
                "HTTPConnectionPool(host='gw.test', port=80): Max retries exceeded with url: /x (Caused by "
                "ResponseError('too many 502 error responses'))"
            ),
            EndpointUnreachable,
            "answered 502 (the gateway cannot reach the service behind it)",
        ),
        (
            MlflowException(
                "API request to endpoint /api/2.0/mlflow/logged-models failed with error code 404 != 200.",
                error_code="ENDPOINT_NOT_FOUND",
            ),
            TrackingError,
            "logged-models API",
        ),
        (
            RestException({"error_code": "PERMISSION_DENIED", "message": "Invalid Host header"}),
            AuthError,
            "--allowed-hosts",
        ),
        (
            MlflowException("INVALID_PARAMETER_VALUE: bad", error_code="INVALID_PARAMETER_VALUE"),
            TrackingError,
            "failed: INVALID_PARAMETER_VALUE",
        ),
    ],
)
def test_mlflow_failures_become_one_clear_error(exc, kind, words):
    err = translate(exc, CONFIG, "train")
    assert isinstance(err, kind)
    assert words in str(err)
    assert "http://gw.test/mlflow" in str(err)
