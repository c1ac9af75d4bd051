"""The local Metro stack and the whole workflow through its gateway only."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import mlflow.pyfunc
import pytest
import requests

from metro_e2e import data, promotion, registry, serving, training
from metro_e2e.errors import AuthError
from metro_e2e.serving import ServingClient
from metro_e2e.stack import LocalStack, StackOptions
from metro_e2e.stack.s3 import choose_backend, docker_available
from metro_e2e.storage import Storage


def test_status_names_backend_versions_logs_and_kfp(metro_stack):
    status = metro_stack.status()
    assert status["s3_backend"] in {"moto", "minio (binary)", "minio (docker)"}
    assert status["mlflow_server"] == "2.20.3"
    assert "not part of the local stack" in status["kfp"]
    for name in ("s3", "mlflow", "gateway", "serving"):
        assert status["services"][name]["log"].endswith(".log")
        assert status["services"][name]["url"].startswith("http://127.0.0.1:")
    assert status["started_in_s"] > 0


def test_gateway_routes_mirror_istio(metro_stack):
    gw = metro_stack.gateway_url
    api = requests.get(f"{gw}/mlflow/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
    assert api.status_code == 200 and "experiments" in api.json()
    ui = requests.get(f"{gw}/mlflow/", timeout=10)
    assert ui.status_code == 200 and "<html" in ui.text.lower()
    redirect = requests.get(
        f"{gw}/mlflow-model", headers={"Host": "mlflow-model.local"}, timeout=10, allow_redirects=False
    )
    assert redirect.status_code == 301 and redirect.headers["Location"].endswith("/mlflow-model/")
    no_host = requests.post(
        f"{gw}/mlflow-model/invocations", data=b"{}", timeout=10, headers={"Content-Type": "application/json"}
    )
    assert no_host.status_code in (403, 404) and "<Error>" in no_host.text, "without the Host header: S3, not the model"
    kfp = requests.get(f"{gw}/pipeline/apis/v2beta1/healthz", timeout=10)
    assert kfp.status_code == 503 and "KFP does not run" in kfp.json()["error"]


def test_s3_refuses_anonymous_and_wrong_keys(metro_stack):
    anonymous = requests.get(f"{metro_stack.gateway_url}/ml-models?list-type=2", timeout=10)
    assert anonymous.status_code == 403 and "AccessDenied" in anonymous.text
    wrong = Storage(metro_stack.config(s3_access_key="not-minio"))
    with pytest.raises(AuthError, match="InvalidAccessKeyId"):
        wrong.list_keys("ml-data", "")


def test_workflow_through_the_gateway(metro_stack, tmp_path):
    tag = uuid.uuid4().hex[:8]
    config = metro_stack.config(
        data_key=f"metro-e2e/{tag}/iris.csv", experiment=f"metro-e2e-{tag}", model_name=f"metro-e2e-{tag}"
    )
    storage = Storage(config)
    frame = data.iris_frame()
    data.upload_dataset(storage, frame, bucket=config.data_bucket, key=config.data_key)
    parts = data.split(data.read_dataset(storage, bucket=config.data_bucket, key=config.data_key))
    result = training.train(config, parts, lineage=f"it-{tag}")
    keys = storage.list_keys("ml-models", "")
    assert any(k.endswith(f"{result.run_id}/artifacts/iris-model/MLmodel") for k in keys), "artifacts land in S3"
    promoted = promotion.promote(config, version=result.version)
    assert promotion.inspect_latest(storage, bucket="ml-models", latest_prefix="latest/").complete
    assert metro_stack.restart_serving() == "running"
    promotion.download_latest(storage, bucket="ml-models", latest_prefix="latest/", dest=tmp_path / "m")
    expected = mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(frame.drop(columns=["target"])).tolist()
    client = ServingClient.from_config(config)
    for fmt in serving.BUILDERS:
        answer = client.predict_frame(frame.drop(columns=["target"]), fmt)
        assert answer.predictions == expected, fmt
    marker = json.loads(storage.get_bytes("ml-models", promoted.marker_key))
    assert marker["version"] == result.version and marker["name"] == config.model_name


def test_testcontainers_minio_path():
    ok, why = docker_available()
    if not ok:
        assert choose_backend().backend in ("moto", "minio (binary)")
        pytest.skip(f"MinIO via testcontainers needs Docker: {why}")
    with LocalStack(StackOptions(s3="auto")) as stack:  # pragma: no cover - runs where Docker exists
        assert stack.status()["s3_backend"] == "minio (docker)"
        Storage(stack.config()).put_bytes("ml-data", "metro-e2e/probe", b"x")


def test_compiled_pipeline_runs_locally_against_the_stack(metro_stack, tmp_path, request):
    from mlflow.tracking import MlflowClient

    from metro_e2e.pipeline.local import run_local

    tag = uuid.uuid4().hex[:8]
    config = metro_stack.config(
        data_key=f"metro-e2e/{tag}/iris.csv", experiment=f"metro-e2e-{tag}", model_name=f"metro-e2e-{tag}"
    )
    data.upload_dataset(Storage(config), data.iris_frame(), bucket="ml-data", key=config.data_key)
    params = [
        f"s3_endpoint={config.s3_endpoint}",
        f"tracking_uri={config.tracking_uri}",
        f"data_key={config.data_key}",
        f"experiment={config.experiment}",
        f"model_name={config.model_name}",
    ]
    result = run_local(request.config.rootpath / "fixtures" / "iris_pipeline.yaml", params=params, run_dir=tmp_path)
    assert [t.state for t in result.tasks] == ["SUCCEEDED", "SUCCEEDED", "SKIPPED"]
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    (version,) = client.search_model_versions(registry.name_filter(config.model_name))
    assert client.get_run(version.run_id).data.tags[training.LINEAGE_TAG] == result.run_id


def test_stack_cli_up_status_down(tmp_path, capsys):
    from metro_e2e import cli
    from metro_e2e.stack.process import StackError

    from .conftest import _require_nginx

    _require_nginx()
    state = str(tmp_path / "current.json")
    assert cli.main(["stack", "up", "--s3", "moto", "--run-dir", str(tmp_path / "run"), "--state", state]) == 0
    try:
        out = capsys.readouterr().out
        gateway = out.split("gateway    ", 1)[1].split()[0]
        assert requests.get(gateway + "/mlflow/api/2.0/mlflow/experiments/search?max_results=1", timeout=10).ok
        assert "S3 moto" in out and "crash-looping" in out and "mlflow.log" in out
        assert cli.main(["stack", "up", "--state", state]) == StackError.exit_code  # one stack per state file
        assert cli.main(["stack", "status", "--state", state]) == 0
        assert "[running]" in capsys.readouterr().out
        pids = [
            svc["pid"]
            for svc in json.loads(Path(Path(state).read_text()).read_text())["services"].values()
            if svc.get("pid")
        ]
        assert len(pids) == 4  # s3, the SigV4 check, mlflow, gateway; serving is crash-looping
    finally:
        assert cli.main(["stack", "down", "--state", state]) == 0
    for pid in pids:  # no orphans: every process group is gone
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    assert "stopped gateway, sigv4, mlflow, s3" in capsys.readouterr().out  # serving crash-looped: no process
    with pytest.raises(requests.ConnectionError):
        requests.get(gateway + "/pipeline", timeout=5)
    assert cli.main(["stack", "status", "--state", state]) == StackError.exit_code
