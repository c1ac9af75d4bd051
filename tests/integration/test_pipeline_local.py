"""`metro-e2e pipeline run-local` of the compiled pipeline against S3 on loopback and a sqlite MLflow store."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from metro_e2e import cli, data, registry
from metro_e2e.errors import PipelineError
from metro_e2e.pipeline.local import run_local
from metro_e2e.storage import Storage
from metro_e2e.training import LINEAGE_TAG


@pytest.fixture
def metro_pipeline_file(request) -> str:
    return str(request.config.rootpath / "fixtures" / "iris_pipeline.yaml")


def _params(config, **extra) -> list[str]:
    values = {
        "s3_endpoint": config.s3_endpoint,
        "tracking_uri": config.tracking_uri,
        "data_key": config.data_key,
        "experiment": config.experiment,
        "model_name": config.model_name,
        **extra,
    }
    return [f"{k}={v}" for k, v in values.items()]


def test_run_local_completes_every_task_and_registers(
    metro_loopback_platform, metro_pipeline_file, tmp_path, monkeypatch, capsys
):
    config = metro_loopback_platform
    monkeypatch.setenv("METRO_ARTIFACT_ROOT", "s3://ml-models")
    monkeypatch.setenv("METRO_LATEST_PREFIX", config.latest_prefix)
    data.upload_dataset(Storage(config), data.iris_frame(), bucket="ml-data", key=config.data_key)
    argv = ["pipeline", "run-local", metro_pipeline_file, "--run-dir", str(tmp_path / "runs")]
    argv += [a for p in _params(config, promote="true") for a in ("--param", p)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for task in ("load-data", "train-model", "promote-model"):
        assert f"{task}" in out and "SUCCEEDED" in out.split(task, 1)[1].splitlines()[0]
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    versions = client.search_model_versions(registry.name_filter(config.model_name))
    assert [str(v.version) for v in versions] == ["1"]
    run_id = out.split("run local-", 1)[1].split()[0]
    assert client.get_run(versions[0].run_id).data.tags[LINEAGE_TAG] == f"local-{run_id}"
    assert config.latest_prefix + "MLmodel" in Storage(config).list_keys("ml-models", config.latest_prefix)


def test_promotion_is_skipped_unless_asked(metro_loopback_platform, metro_pipeline_file, tmp_path, monkeypatch):
    config = metro_loopback_platform
    monkeypatch.setenv("METRO_ARTIFACT_ROOT", "s3://ml-models")
    data.upload_dataset(Storage(config), data.iris_frame(), bucket="ml-data", key=config.data_key)
    result = run_local(metro_pipeline_file, params=_params(config), run_dir=tmp_path)
    assert {t.name: t.state for t in result.tasks} == {
        "load-data": "SUCCEEDED",
        "train-model": "SUCCEEDED",
        "promote-model": "SKIPPED",
    }


def test_failing_task_stops_the_run_with_name_code_and_log(
    metro_loopback_platform, metro_pipeline_file, tmp_path, capsys
):
    config = metro_loopback_platform  # no data uploaded under this test's key
    argv = ["pipeline", "run-local", metro_pipeline_file, "--run-dir", str(tmp_path)]
    argv += [a for p in _params(config) for a in ("--param", p)]
    assert cli.main(argv) == PipelineError.exit_code
    captured = capsys.readouterr()
    assert "task load-data failed with exit code 6" in captured.err
    assert "no such object" in captured.err  # the last log lines of the failing task
    assert "train-model      NOT_RUN" in captured.out


def test_task_timeout_kills_the_task(metro_loopback_platform, metro_pipeline_file, tmp_path):
    with pytest.raises(PipelineError, match="task load-data timed out") as info:
        run_local(metro_pipeline_file, params=_params(metro_loopback_platform), run_dir=tmp_path, task_timeout=0.3)
    assert "killed after" in info.value.result.tasks[0].log.read_text()
