"""Serving client: every payload builder is accepted by MLflow's own scoring server, errors are typed."""

from __future__ import annotations

import json

import pytest
import requests

from metro_e2e import serving
from metro_e2e.errors import EndpointUnreachable, ServingError
from metro_e2e.serving import InProcessScoring, ServingClient

URL = "http://gw.test/mlflow-model/invocations"


@pytest.fixture
def metro_scoring(metro_iris_model):
    adapter = InProcessScoring(metro_iris_model.model)
    session = requests.Session()
    session.mount("http://", adapter)
    return ServingClient(URL, session=session), adapter


@pytest.mark.parametrize("fmt", sorted(serving.BUILDERS))
def test_every_format_gives_the_models_own_predictions(metro_iris_model, metro_scoring, fmt):
    client, adapter = metro_scoring
    answer = client.predict_frame(metro_iris_model.features, fmt)
    expected = metro_iris_model.model.predict(metro_iris_model.features).tolist()
    assert answer.status == 200
    assert answer.predictions == expected
    assert set(answer.predictions) <= {0, 1, 2}
    sent = adapter.requests[-1]
    assert sent.headers["Host"] == "mlflow-model.local"
    assert sent.headers["Content-Type"] == serving.BUILDERS[fmt](metro_iris_model.features.head(1)).content_type


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"{}", "application/json", 400),
        (
            json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1]]}, "instances": [[1]]}).encode(),
            "application/json",
            400,
        ),
        (json.dumps({"dataframe_records": [{"wrong column": 1.0}]}).encode(), "application/json", 400),
        (json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode(), "application/json", 400),
        (b"a=1", "application/x-www-form-urlencoded", 415),
    ],
    ids=["malformed", "no-key", "two-keys", "wrong-columns", "bare-instances-vs-signature", "form"],
)
def test_bad_requests_raise_with_status_and_error_code(metro_scoring, body, content_type, status):
    client, _ = metro_scoring
    with pytest.raises(ServingError) as info:
        client.predict(serving.Payload("raw", content_type, body))
    assert info.value.status == status
    if status == 400:
        assert info.value.error_code in {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}
        assert info.value.server_message
    assert str(status) in str(info.value) and URL in str(info.value)


def test_non_json_success_is_an_error():
    class Html(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            r = requests.Response()
            r.status_code, r._content, r.url = 200, b"<html>MinIO Console</html>", request.url
            return r

        def close(self):
            pass

    session = requests.Session()
    session.mount("http://", Html())
    with pytest.raises(ServingError, match="without a JSON 'predictions' field.*MinIO Console"):
        ServingClient(URL, session=session).predict(serving.dataframe_split(__import__("pandas").DataFrame({"a": [1]})))


def test_connection_failure_is_endpoint_unreachable():
    class Down(requests.adapters.BaseAdapter):
        def send(self, request, **kwargs):
            assert kwargs["timeout"] == (2.0, 3.0)
            raise requests.exceptions.ConnectTimeout("timed out")

        def close(self):
            pass

    session = requests.Session()
    session.mount("http://", Down())
    client = ServingClient(URL, connect_timeout=2.0, read_timeout=3.0, session=session)
    with pytest.raises(
        EndpointUnreachable, match=r"gave no answer: no connection within 2 s \(METRO_CONNECT_TIMEOUT\)"
    ):
        client.post(b"{}", "application/json")


def test_builders_shapes():
    import pandas as pd

    frame = pd.DataFrame({"x (cm)": [1.5, 2.0], "y": [3.0, 4.25]})
    assert json.loads(serving.dataframe_split(frame).body) == {
        "dataframe_split": {"columns": ["x (cm)", "y"], "data": [[1.5, 3.0], [2.0, 4.25]]}
    }
    assert json.loads(serving.dataframe_records(frame).body) == {
        "dataframe_records": [{"x (cm)": 1.5, "y": 3.0}, {"x (cm)": 2.0, "y": 4.25}]
    }
    assert json.loads(serving.inputs(frame).body) == {"inputs": {"x (cm)": [1.5, 2.0], "y": [3.0, 4.25]}}
    assert serving.csv(frame).body.decode().splitlines() == ["x (cm),y", "1.5,3.0", "2.0,4.25"]


def test_from_config_uses_the_gateway_route_and_host(metro_unit_platform):
    client = ServingClient.from_config(metro_unit_platform)
    assert client.url == "http://metro.demo/mlflow-model/invocations"
    assert client.host == "mlflow-model.local"
    assert client.timeout == (5.0, 30.0)


def test_the_local_model_server_runs_the_command_mlflow_models_serve_would(tmp_path):
    """The local stack runs MLflow's scoring server in one process (stack/model_serve.py) instead of the CLI's two:
    it must be the command and environment MLflow's own ``models serve`` backend builds, with one worker."""
    from mlflow.pyfunc import scoring_server
    from mlflow.utils.file_utils import path_to_local_file_uri

    from metro_e2e.stack import model_serve

    line, env = model_serve.command(str(tmp_path), "127.0.0.1", 5099)
    assert line == [
        "uvicorn", "--host", "127.0.0.1", "--port", "5099", "--workers", "1", "mlflow.pyfunc.scoring_server.app:app"
    ]  # fmt: skip
    assert env[scoring_server._SERVER_MODEL_PATH] == path_to_local_file_uri(str(tmp_path))
    assert "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT" in env
