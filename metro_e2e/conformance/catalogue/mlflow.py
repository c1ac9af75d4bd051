"""MLflow tracking and the model registry behind the gateway. Its clauses (CONTRACT.md), each with the breakages proven to fail it; its checks are in
``conformance/checks/mlflow.py``."""

from metro_e2e.conformance.catalogue._model import (
    BAD_INPUT,
    CORE,
    FAULT,
    MLF_KFP,
    READ,
    UNIT,
    WRITE,
    Budget,
    breakage,
    declare,
    stops_answering,
)

CLAUSES = (
    declare(
        "MLF-1",
        CORE,
        READ,
        "GW-1",
        "The MLflow REST API answers through `<url>/mlflow` with the Host header a client "
        "naturally sends (experiments search → 200).",
        Budget(5, 1),
        slug="rest_api_through_gateway",
        quick=True,
        breakages=(
            breakage(
                "wrong status",
                "an MLflow 3 server without --allowed-hosts, reached under the gateway's name (403)",
                f"{MLF_KFP}test_mlflow3_without_allowed_hosts_fails_mlf_1",
            ),
            breakage("wrong content", "a login page answers at /mlflow", f"{BAD_INPUT}[mlflow-answers-html-check]"),
            breakage(
                "wrong status",
                "the REST API answers something but a JSON list of experiments",
                f"{UNIT}test_mlf_1_fails_unless_the_rest_api_answers",
            ),
            *stops_answering("mlflow-tracking"),
            breakage("crash", "MLflow killed while the check runs", f"{FAULT}[mlflow-killed]"),
        ),
    ),
    declare(
        "MLF-2",
        CORE,
        READ,
        "MLF-1",
        "The MLflow UI loads at `<url>/mlflow/` (HTML, and the assets it references load).",
        Budget(15, 1),
        slug="ui_loads",
        breakages=(
            breakage(
                "wrong status",
                "the UI's scripts and styles are not routed (404)",
                f"{MLF_KFP}test_ui_that_cannot_run_in_a_browser_fails_mlf_2[assets-not-routed]",
            ),
            breakage(
                "wrong content",
                "every path answers the UI page (an SPA fallback), so no script loads",
                f"{MLF_KFP}test_ui_that_cannot_run_in_a_browser_fails_mlf_2[every-path-answers-the-page]",
                f"{UNIT}test_mlf_2_fails_when_every_path_answers_the_uis_html",
            ),
            breakage(
                "wrong content",
                "a script served with a content type browsers refuse to run",
                f"{UNIT}test_mlf_2_fails_when_a_script_has_the_wrong_content_type",
            ),
        ),
    ),
    declare(
        "MLF-3",
        CORE,
        READ,
        "MLF-1",
        "The server reports its version, and the workflow's MLflow client is compatible "
        "with it (a tested pair; a major-version skew fails with both versions named).",
        Budget(5, 1),
        slug="client_server_pair",
        breakages=(
            breakage(
                "wrong version",
                "a server of another major version (1.x)",
                f"{MLF_KFP}test_version_skew_fails_mlf_3_naming_both_versions",
            ),
            breakage(
                "wrong version",
                "an MLflow 3.x client against the platform's 2.20.3 server (run by `tox -e mlflow3`)",
                "tests/integration/test_mlflow_pairs.py::test_check_with_this_client_against_the_platforms_server",
            ),
        ),
    ),
    declare(
        "MLF-4",
        CORE,
        WRITE,
        "MLF-3, S3-2",
        "A new experiment's artifact location is under `s3://ml-models/`.",
        Budget(10, 2),
        slug="artifact_location",
        breakages=(
            breakage(
                "wrong object",
                "artifacts proxied by the server (mlflow-artifacts:/), not in s3://ml-models/",
                f"{MLF_KFP}test_artifacts_not_in_s3_fail_mlf_4",
            ),
        ),
    ),
    declare(
        "MLF-5",
        CORE,
        WRITE,
        "MLF-4",
        "A run logs a param, a metric and an sklearn model; the model's files land in "
        "`ml-models`; registering it creates exactly one new version of the registered model.",
        Budget(60, 3),
        slug="log_and_register",
        breakages=(
            breakage(
                "missing permission",
                "the model's files cannot be written to ml-models",
                f"{MLF_KFP}test_model_logging_and_registry_breakages_fail_mlf_5[model-uploads-refused]",
            ),
            breakage(
                "partial state",
                "the registry does not list the new version (a registry per replica)",
                f"{MLF_KFP}test_model_logging_and_registry_breakages_fail_mlf_5[registry-lists-no-new-version]",
            ),
            breakage(
                "wrong object",
                "the registry points the version at another bucket",
                f"{MLF_KFP}test_model_logging_and_registry_breakages_fail_mlf_5[registry-points-elsewhere]",
            ),
            *stops_answering("mlflow-registry"),
        ),
    ),
)
