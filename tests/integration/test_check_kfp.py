"""The KFP clauses through `metro-e2e check`, against the local stack with a fake KFP behind its gateway.

The fake accepts the compiled pipeline and, for each run, executes it with
metro-e2e's local runner (the KFP run id as the pipeline job id), so KFP-3
and KFP-4 see a real pipeline run register a real model version.
"""

from __future__ import annotations

import os

from .checking import check, detail, expect_outcome, verdicts
from .fake_kfp import FakeKfp, local_executor


def _stack(tmp_path_factory, fake: FakeKfp):
    from metro_e2e.stack import LocalStack, StackOptions

    from .conftest import _require_nginx

    _require_nginx()
    kfp = fake.url.removeprefix("http://").split("/", 1)[0]
    return LocalStack(StackOptions(run_dir=tmp_path_factory.mktemp("kfp-stack"), seed_model=True, kfp=kfp))


def test_kfp_clauses_pass_with_a_backend_that_runs_the_pipeline(tmp_path_factory, tmp_path):
    fake = FakeKfp(execute=local_executor(dict(os.environ), tmp_path / "kfp-runs"))
    with fake, _stack(tmp_path_factory, fake) as stack:
        # the pipeline's steps reach the platform the way in-cluster steps would: through the gateway
        code, report, out = check(
            tmp_path,
            "--url",
            stack.gateway_url,
            "--step-image",
            "metro-e2e-step:test",
            "--skip",
            "S3-3",
            "SRV",
            env={"METRO_IN_CLUSTER_URL": stack.gateway_url},
        )
    v = verdicts(report)
    assert code == 0, out[-3000:]
    assert [v[c] for c in ("KFP-1", "KFP-2", "KFP-3", "KFP-4")] == ["passed"] * 4, report["clauses"]
    assert "tagged with KFP run" in detail(report, "KFP-4")
    assert fake.pipelines == {} and fake.experiments == {}, "the uploaded pipeline and the experiment are deleted"
    assert report["leftovers"] == []
    assert any(c.startswith("DELETE /apis/v2beta1/experiments/") for c in fake.calls)
    assert report["versions"]["kfp_backend"] == "fake"


def test_a_failed_pipeline_run_fails_kfp_3_with_the_task_and_blocks_kfp_4(tmp_path_factory, tmp_path):
    fake = FakeKfp(outcome="FAILED", polls_before_end=0)
    with fake, _stack(tmp_path_factory, fake) as stack:
        code, report, _ = check(
            tmp_path, "--url", stack.gateway_url, "--step-image", "img", "--skip", "SRV", "PRM", "MLF-5", "S3-3"
        )
    assert code == 1
    expect_outcome(report, {"KFP-3": r"ended FAILED .*; failing task train-model: .*MLflow did not answer"})


def test_upload_refused_fails_kfp_2(tmp_path_factory, tmp_path):
    fake = FakeKfp(fail_upload=True)
    with fake, _stack(tmp_path_factory, fake) as stack:
        code, report, _ = check(
            tmp_path, "--url", stack.gateway_url, "--step-image", "img", "--skip", "SRV", "PRM", "MLF-5", "S3-3"
        )
    assert code == 1
    expect_outcome(report, {"KFP-2": r"the compiled pipeline to upload; got cannot upload the pipeline: .*500"})


def test_a_run_that_registers_nothing_fails_kfp_4(tmp_path_factory, tmp_path):
    fake = FakeKfp(outcome="SUCCEEDED", polls_before_end=0)  # claims success, runs nothing
    with fake, _stack(tmp_path_factory, fake) as stack:
        code, report, _ = check(
            tmp_path, "--url", stack.gateway_url, "--step-image", "img", "--skip", "SRV", "PRM", "MLF-5", "S3-3"
        )
    assert code == 1
    expect_outcome(
        report, {"KFP-4": r"one MLflow run tagged .* and one new version .*; got 0 run\(s\), 0 tagged, 0 version"}
    )


def test_a_pipeline_compiled_for_a_newer_backend_fails_kfp_3_in_2_4_0s_driver(tmp_path_factory, tmp_path):
    """Told the platform runs a newer KFP (--kfp-backend sdk), KFP-2 uploads what kfp-kubernetes 2.17 writes; 2.4.0
    takes it (the platform spec's executors are free-form there) and its driver refuses every task's config."""
    fake = FakeKfp(execute=local_executor(dict(os.environ), tmp_path / "kfp-runs"))
    with fake, _stack(tmp_path_factory, fake) as stack:
        code, report, _ = check(
            tmp_path,
            "--url",
            stack.gateway_url,
            "--step-image",
            "img",
            "--kfp-backend",
            "sdk",
            "--skip",
            "SRV",
            "PRM",
            "MLF-5",
            "S3-3",
        )
    assert code == 1
    expect_outcome(
        report,
        {
            "KFP-3": r"ended FAILED .*; failing task load-data: failed to unmarshal Kubernetes config, error: KFP 2\.4\.0's "
            r'driver cannot read the Kubernetes config of exec-load-data \(jsonpb\): .*has no field named "optional"'
        },
    )
    assert "compiled for KFP sdk" in detail(report, "KFP-2")
    assert fake.pipelines == {} and fake.experiments == {}
