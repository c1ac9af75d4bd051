"""Kubeflow Pipelines behind the gateway. Its clauses (CONTRACT.md), each with the breakages proven to fail it; its checks are in
``conformance/checks/kfp.py``."""

from metro_e2e.conformance.catalogue._model import (
    CORE,
    KFP,
    MLF_KFP,
    READ,
    STEP_IMAGE,
    UNIT,
    WRITE,
    Budget,
    breakage,
    declare,
    stops_answering,
)

CLAUSES = (
    declare(
        "KFP-1",
        CORE,
        READ,
        "GW-1",
        "The KFP API answers at `<url>/pipeline/apis/v2beta1/healthz` and the UI at `<url>/pipeline/`.",
        Budget(10, 2),
        slug="api_and_ui",
        quick=True,
        breakages=(
            breakage(
                "no answer",
                "no KFP behind the gateway's /pipeline route (503)",
                f"{MLF_KFP}test_no_kfp_behind_the_gateway_fails_kfp_1_when_not_skipped",
            ),
            breakage(
                "wrong content",
                "healthz without JSON, or a UI that is not HTML",
                f"{UNIT}test_kfp_1_fails_unless_api_and_ui_answer",
            ),
            *stops_answering("kfp"),
        ),
    ),
    declare(
        "KFP-2",
        CORE,
        WRITE,
        "KFP-1",
        "The compiled Iris pipeline uploads as a pipeline (and is deleted afterwards).",
        Budget(60, 3),
        slug="pipeline_uploads",
        needs=STEP_IMAGE,
        breakages=(
            breakage("wrong status", "the pipeline upload is refused (500)", f"{KFP}test_upload_refused_fails_kfp_2"),
            breakage(
                "wrong content",
                "a spec KFP 2.4.0 cannot read (a field newer than its protos, another schemaVersion) is refused "
                "by the upload (500, 'unknown template format')",
                "tests/integration/test_kfp.py::test_an_upload_2_4_0_cannot_read_is_refused_with_its_error_body",
                "tests/unit/test_kfp_backend.py::test_each_thing_2_4_0_cannot_read_is_named",
            ),
        ),
    ),
    declare(
        "KFP-3",
        CORE,
        WRITE,
        "KFP-2, S3-2, MLF-1",
        "A run of the Iris pipeline reaches `SUCCEEDED` within the run "
        "timeout; on any other end state the failing task and its error are reported.",
        Budget(60, 3, "kfp_run_timeout_s"),
        slug="run_succeeds",
        needs=STEP_IMAGE,
        breakages=(
            breakage(
                "crash",
                "a task of the run fails",
                f"{KFP}test_a_failed_pipeline_run_fails_kfp_3_with_the_task_and_blocks_kfp_4",
            ),
            breakage(
                "wrong content",
                "the pipeline is compiled for a newer KFP than the platform's 2.4.0: its driver refuses every "
                "task's Kubernetes config",
                f"{KFP}test_a_pipeline_compiled_for_a_newer_backend_fails_kfp_3_in_2_4_0s_driver",
            ),
        ),
    ),
    declare(
        "KFP-4",
        CORE,
        WRITE,
        "KFP-3",
        "That run produced one new MLflow run in the experiment (tagged with the KFP run "
        "id) and one new registered model version.",
        Budget(20, 2),
        slug="run_lineage",
        needs=STEP_IMAGE,
        breakages=(
            breakage(
                "partial state",
                "the run reports SUCCEEDED and registers nothing",
                f"{KFP}test_a_run_that_registers_nothing_fails_kfp_4",
            ),
        ),
    ),
)
