"""metro_e2e.kfp against a fake KFP v2beta1 server: success, a failed run, a canceled run, a server that hangs."""

from __future__ import annotations

import time

import pytest

from metro_e2e.errors import EndpointUnreachable
from metro_e2e.kfp import Kfp, KfpError

from .fake_kfp import FakeKfp


@pytest.fixture
def metro_pipeline_file(request) -> str:
    return str(request.config.rootpath / "fixtures" / "iris_pipeline.yaml")


def _client(fake: FakeKfp, **kw) -> Kfp:
    return Kfp(fake.url, connect_timeout=2, read_timeout=kw.pop("read_timeout", 5), **kw)


def _started_run(kfp: Kfp, pipeline_file: str) -> str:
    """Upload the pipeline and start one run of it; the run's id."""
    pid, vid = kfp.upload(pipeline_file, "p")
    return kfp.start(pipeline_id=pid, version_id=vid, run_name="r", experiment="e", params={})[1]


def test_upload_run_wait_delete(metro_pipeline_file):
    with FakeKfp(outcome="SUCCEEDED") as fake:
        kfp = _client(fake)
        assert kfp.healthz()["tag_name"] == "2.4.0"
        pipeline_id, version_id = kfp.upload(metro_pipeline_file, "metro-e2e-run1")
        experiment_id, run_id = kfp.start(
            pipeline_id=pipeline_id,
            version_id=version_id,
            run_name="r",
            experiment="metro-e2e-run1",
            params={"promote": False},
        )
        lines: list[str] = []
        outcome = kfp.wait(run_id, timeout_s=30, poll_s=0.05, progress=lines.append)
        assert outcome.state == "SUCCEEDED" and "SUCCEEDED" in outcome.describe()
        assert any("RUNNING" in line for line in lines), "progress lines while waiting"
        kfp.delete_pipeline(pipeline_id)
        kfp.delete_experiment(experiment_id)
        assert f"DELETE /apis/v2beta1/pipelines/{pipeline_id}" in fake.calls
        assert f"DELETE /apis/v2beta1/pipelines/{pipeline_id}/versions/{version_id}" in fake.calls


def test_failed_run_names_the_failing_task_and_its_error(metro_pipeline_file):
    with FakeKfp(outcome="FAILED") as fake:
        kfp = _client(fake)
        run_id = _started_run(kfp, metro_pipeline_file)
        outcome = kfp.wait(run_id, timeout_s=30, poll_s=0.05)
    assert outcome.state == "FAILED" and outcome.failing_task == "train-model"
    assert "MLflow did not answer" in outcome.describe()


def test_canceled_run_ends_the_wait_at_once(metro_pipeline_file):
    with FakeKfp(outcome="CANCELED", polls_before_end=1) as fake:
        kfp = _client(fake)
        run_id = _started_run(kfp, metro_pipeline_file)
        started = time.monotonic()
        outcome = kfp.wait(run_id, timeout_s=600, poll_s=0.05)
    assert outcome.state == "CANCELED" and time.monotonic() - started < 5
    assert outcome.failing_task == "train-model"


def test_a_run_that_never_ends_times_out_with_its_last_state(metro_pipeline_file):
    with FakeKfp(outcome="NEVER") as fake:
        kfp = _client(fake)
        run_id = _started_run(kfp, metro_pipeline_file)
        outcome = kfp.wait(run_id, timeout_s=0.5, poll_s=0.1)
    assert outcome.state == "TIMED_OUT" and "still RUNNING" in outcome.error


def test_a_hanging_healthz_is_unreachable_within_the_timeout():
    with FakeKfp(hang=("healthz",)) as fake:
        started = time.monotonic()
        with pytest.raises(EndpointUnreachable, match="did not answer: ReadTimeout"):
            _client(fake, read_timeout=1).healthz()
        assert time.monotonic() - started < 5


def test_a_hanging_get_run_is_unreachable_within_the_timeout(metro_pipeline_file):
    with FakeKfp(hang=("/runs/",)) as fake:
        kfp = _client(fake, read_timeout=1)
        run_id = _started_run(kfp, metro_pipeline_file)
        started = time.monotonic()
        with pytest.raises(EndpointUnreachable, match="cannot get the run"):
            kfp.wait(run_id, timeout_s=60, poll_s=0.05)
        assert time.monotonic() - started < 10


def test_unknown_pipeline_is_a_kfp_error():
    with FakeKfp() as fake, pytest.raises(KfpError, match="cannot list pipeline versions"):
        _client(fake).delete_pipeline("no-such-pipeline")
