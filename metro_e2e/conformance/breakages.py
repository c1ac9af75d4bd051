"""How each clause is proven: the realistic ways a platform breaks its promise, each with the tests that show the
clause failing on exactly that (pytest node ids from the repository root; a unit test checks that every named test
exists). Rendered into ``docs/clauses.md``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Breakage:
    """A realistic way a platform breaks a clause's promise, and the tests that show the clause failing on it."""

    kind: str  # no answer, wrong status, wrong content, wrong object, partial state, missing permission, ...
    what: str
    tests: tuple[str, ...]


_BAD = "tests/integration/test_bad_input.py::test_bad_input_is_one_sentence_with_its_exit_code"
_GW_S3 = "tests/integration/test_breakages_gateway_s3.py::"
_MLF = "tests/integration/test_breakages_mlflow_kfp.py::"
_SRV = "tests/integration/test_breakages_serving.py::"
_KFP = "tests/integration/test_check_kfp.py::"
_BUDGET = "tests/integration/test_budgets.py::test_a_failing_component_fails_its_clause_within_the_budget"
_FAULT = (
    "tests/integration/test_faults_mid_run.py::test_fault_mid_run_fails_the_component_first_and_blocks_its_dependents"
)
_UNIT = "tests/unit/test_checks.py::"


def _b(kind: str, what: str, *tests: str) -> Breakage:
    return Breakage(kind, what, tests)


def _budget(component: str) -> tuple[Breakage, ...]:
    """The three ways a component stops answering, each failing its clause within the clause's budget."""
    return (
        _b("wrong status", f"{component} answers 500 to every request", f"{_BUDGET}[{component}-5xx]"),
        _b("timeout", f"{component} accepts connections and never answers", f"{_BUDGET}[{component}-hang]"),
        _b(
            "no answer", f"{component} refuses connections (the gateway answers 502)", f"{_BUDGET}[{component}-refused]"
        ),
    )


BREAKAGES: dict[str, tuple[Breakage, ...]] = {
    "GW-1": (
        _b(
            "no answer",
            "nothing listens at the URL",
            "tests/integration/test_check.py::test_unreachable_gateway_fails_gw_1_and_still_writes_the_reports",
            f"{_BAD}[url-refused]",
        ),
        _b("no answer", "the gateway's host name does not resolve", f"{_BAD}[url-unresolvable]"),
        _b("timeout", "the gateway accepts connections and never answers", f"{_BAD}[url-silent]"),
        _b(
            "wrong status",
            "https:// given for a plain-HTTP gateway (the TLS handshake fails)",
            f"{_BAD}[url-https-on-http]",
        ),
        _b(
            "wrong status",
            "the gateway answers 500 or 501 to everything",
            f"{_GW_S3}test_gateway_answering_a_server_error_to_everything_fails_gw_1[500]",
            f"{_GW_S3}test_gateway_answering_a_server_error_to_everything_fails_gw_1[501]",
            f"{_UNIT}test_gw_1_fails_on_any_5xx",
        ),
    ),
    "S3-1": (
        _b("missing permission", "an access key S3 does not know", f"{_GW_S3}test_wrong_access_key_fails_s3_1"),
        _b(
            "missing permission",
            "the right access key with a wrong secret (SignatureDoesNotMatch)",
            f"{_GW_S3}test_wrong_secret_with_the_right_key_fails_s3_1",
        ),
        _b(
            "wrong content",
            "a web page, not S3, answers at the gateway root",
            f"{_UNIT}test_s3_1_fails_on_a_web_page_at_the_root",
            f"{_BAD}[not-a-metro-gateway]",
        ),
        _b("crash", "S3 killed while the check runs (the gateway answers 502)", f"{_FAULT}[s3-killed]"),
        _b("timeout", "S3 frozen while the check runs", f"{_FAULT}[s3-frozen]"),
    ),
    "S3-2": (
        _b(
            "wrong object",
            "the bucket ml-data does not exist",
            f"{_GW_S3}test_missing_bucket_fails_s3_2",
            f"{_UNIT}test_s3_2_fails_on_a_missing_bucket_and_on_a_server_error",
        ),
        *_budget("s3"),
    ),
    "S3-3": (
        _b(
            "wrong status",
            "reads of new objects answer 500",
            f"{_GW_S3}test_s3_object_lifecycle_breakages_fail_s3_3[unreadable]",
        ),
        _b(
            "wrong content",
            "reads return other bytes than were written",
            f"{_GW_S3}test_s3_object_lifecycle_breakages_fail_s3_3[corrupted]",
        ),
        _b(
            "partial state",
            "a listing that misses objects just written",
            f"{_GW_S3}test_s3_object_lifecycle_breakages_fail_s3_3[listing-misses-objects]",
        ),
        _b(
            "partial state",
            "a delete that is acknowledged and deletes nothing",
            f"{_GW_S3}test_s3_object_lifecycle_breakages_fail_s3_3[delete-deletes-nothing]",
        ),
    ),
    "S3-4": (
        _b(
            "too permissive",
            "ml-models open to anonymous reads (`mc anonymous set download`)",
            f"{_GW_S3}test_a_bucket_open_to_anonymous_reads_fails_s3_4",
        ),
        _b(
            "wrong status",
            "anonymous requests answered 400, 500 or 501, or a proxy's 403 page, not S3's own denial",
            f"{_UNIT}test_s3_4_fails_on_any_answer_but_s3s_denial",
        ),
        _b(
            "wrong object",
            "anonymous reads reach the bucket (NoSuchKey)",
            f"{_UNIT}test_s3_4_fails_on_any_answer_but_s3s_denial",
        ),
        _b(
            "wrong status",
            "bucket requests answer 500, hang or are refused",
            f"{_BUDGET}[s3-5xx]",
            f"{_BUDGET}[s3-hang]",
            f"{_BUDGET}[s3-refused]",
        ),
    ),
    "S3-5": (
        _b(
            "too permissive",
            "the published default credentials minio / minio123 are in use",
            f"{_GW_S3}test_published_default_credentials_warn_s3_5_and_fail_it_under_strict",
        ),
    ),
    "MLF-1": (
        _b(
            "wrong status",
            "an MLflow 3 server without --allowed-hosts, reached under the gateway's name (403)",
            f"{_MLF}test_mlflow3_without_allowed_hosts_fails_mlf_1",
        ),
        _b("wrong content", "a login page answers at /mlflow", f"{_BAD}[mlflow-answers-html-check]"),
        _b(
            "wrong status",
            "the REST API answers something but a JSON list of experiments",
            f"{_UNIT}test_mlf_1_fails_unless_the_rest_api_answers",
        ),
        *_budget("mlflow-tracking"),
        _b("crash", "MLflow killed while the check runs", f"{_FAULT}[mlflow-killed]"),
    ),
    "MLF-2": (
        _b(
            "wrong status",
            "the UI's scripts and styles are not routed (404)",
            f"{_MLF}test_ui_that_cannot_run_in_a_browser_fails_mlf_2[assets-not-routed]",
        ),
        _b(
            "wrong content",
            "every path answers the UI page (an SPA fallback), so no script loads",
            f"{_MLF}test_ui_that_cannot_run_in_a_browser_fails_mlf_2[every-path-answers-the-page]",
            f"{_UNIT}test_mlf_2_fails_when_every_path_answers_the_uis_html",
        ),
        _b(
            "wrong content",
            "a script served with a content type browsers refuse to run",
            f"{_UNIT}test_mlf_2_fails_when_a_script_has_the_wrong_content_type",
        ),
    ),
    "MLF-3": (
        _b(
            "wrong version",
            "a server of another major version (1.x)",
            f"{_MLF}test_version_skew_fails_mlf_3_naming_both_versions",
        ),
        _b(
            "wrong version",
            "an MLflow 3.x client against the platform's 2.20.3 server (run by `tox -e mlflow3`)",
            "tests/integration/test_mlflow_pairs.py::test_check_with_this_client_against_the_platforms_server",
        ),
    ),
    "MLF-4": (
        _b(
            "wrong object",
            "artifacts proxied by the server (mlflow-artifacts:/), not in s3://ml-models/",
            f"{_MLF}test_artifacts_not_in_s3_fail_mlf_4",
        ),
    ),
    "MLF-5": (
        _b(
            "missing permission",
            "the model's files cannot be written to ml-models",
            f"{_MLF}test_model_logging_and_registry_breakages_fail_mlf_5[model-uploads-refused]",
        ),
        _b(
            "partial state",
            "the registry does not list the new version (a registry per replica)",
            f"{_MLF}test_model_logging_and_registry_breakages_fail_mlf_5[registry-lists-no-new-version]",
        ),
        _b(
            "wrong object",
            "the registry points the version at another bucket",
            f"{_MLF}test_model_logging_and_registry_breakages_fail_mlf_5[registry-points-elsewhere]",
        ),
        *_budget("mlflow-registry"),
    ),
    "KFP-1": (
        _b(
            "no answer",
            "no KFP behind the gateway's /pipeline route (503)",
            f"{_MLF}test_no_kfp_behind_the_gateway_fails_kfp_1_when_not_skipped",
        ),
        _b(
            "wrong content",
            "healthz without JSON, or a UI that is not HTML",
            f"{_UNIT}test_kfp_1_fails_unless_api_and_ui_answer",
        ),
        *_budget("kfp"),
    ),
    "KFP-2": (_b("wrong status", "the pipeline upload is refused (500)", f"{_KFP}test_upload_refused_fails_kfp_2"),),
    "KFP-3": (
        _b(
            "crash",
            "a task of the run fails",
            f"{_KFP}test_a_failed_pipeline_run_fails_kfp_3_with_the_task_and_blocks_kfp_4",
        ),
    ),
    "KFP-4": (
        _b(
            "partial state",
            "the run reports SUCCEEDED and registers nothing",
            f"{_KFP}test_a_run_that_registers_nothing_fails_kfp_4",
        ),
    ),
    "PRM-1": (
        _b("partial state", "latest/ is empty (the pod crash-loops)", f"{_SRV}test_empty_latest_fails_prm_1"),
        _b(
            "partial state",
            "a file MLmodel references is missing",
            f"{_SRV}test_a_file_mlmodel_references_missing_fails_prm_1",
        ),
        _b("wrong content", "the model file does not load", f"{_SRV}test_a_model_file_that_does_not_load_fails_prm_1"),
    ),
    "PRM-2": (
        _b(
            "missing permission",
            "latest/ cannot be written",
            f"{_SRV}test_latest_not_writable_fails_prm_2_and_leaves_latest_alone",
        ),
        _b(
            "partial state",
            "a file of the previous model stays (the delete is acknowledged, nothing deleted)",
            f"{_SRV}test_a_stale_file_left_in_latest_fails_prm_2",
        ),
        _b(
            "partial state",
            "the marker's write is lost: latest/ does not record what it holds",
            f"{_SRV}test_a_marker_write_that_is_lost_fails_prm_2",
        ),
        _b(
            "partial state",
            "while the swap runs, readers cannot see it is under way and load a mix",
            f"{_SRV}test_a_promotion_readers_cannot_see_in_progress_fails_prm_2",
            f"{_UNIT}test_prm_2_fails_a_promotion_whose_half_swapped_state_a_reader_would_load",
        ),
        _b(
            "partial state",
            "latest/ emptied before the copy (the published serve_model.py)",
            f"{_UNIT}test_prm_2_fails_a_promotion_that_empties_latest_first",
        ),
    ),
    "SRV-1": (
        _b(
            "wrong status",
            "no route for Host mlflow-model.local (the request reaches S3)",
            f"{_SRV}test_gateway_without_host_routing_fails_srv_1",
        ),
        _b("wrong content", "serving answers 200 in plain text", f"{_BAD}[serving-answers-non-json]"),
        _b(
            "wrong content",
            "predictions that are not Iris classes, or not one per row",
            f"{_UNIT}test_srv_1_fails_unless_every_row_gets_an_iris_class",
        ),
        *_budget("model-server"),
        _b("crash", "the model server killed while the check runs", f"{_FAULT}[serving-killed]"),
    ),
    "SRV-2": (
        _b(
            "wrong status",
            "no redirect from /mlflow-model to /mlflow-model/",
            f"{_SRV}test_gateway_without_the_redirect_fails_srv_2",
        ),
        _b(
            "too permissive",
            "the model answers requests without the Host header",
            f"{_SRV}test_model_reachable_without_the_host_header_fails_srv_2",
            f"{_UNIT}test_srv_2_counts_the_model_servers_own_error_as_reaching_it",
        ),
        _b(
            "wrong status",
            "the request without the Host header gets a 5xx: where it went cannot be told",
            f"{_UNIT}test_srv_2_cannot_pass_on_a_server_error",
        ),
    ),
    "SRV-3": (
        _b(
            "wrong status",
            "malformed input answered 500 (no input validation)",
            f"{_SRV}test_model_server_answering_500_to_bad_input_fails_srv_3",
        ),
        _b(
            "wrong status",
            "bad input answered 200, or 400 without a JSON error_code",
            f"{_UNIT}test_srv_3_fails_unless_bad_input_gets_a_4xx_with_an_error_code",
        ),
    ),
    "SRV-4": (
        _b(
            "wrong object",
            "a new model promoted, serving not restarted (a stale model)",
            f"{_SRV}test_stale_model_fails_srv_4",
        ),
    ),
    "SRV-5": (
        _b("no-op", "the restart does nothing", f"{_SRV}test_a_restart_that_does_nothing_fails_srv_5"),
        _b(
            "undecidable",
            "the served model predicts like the promoted one (a model trained the default way): SRV-5 "
            "promotes a version that predicts otherwise, so a no-op restart still fails",
            f"{_SRV}test_a_noop_restart_fails_srv_5_even_when_the_served_model_predicts_like_the_checks",
            f"{_UNIT}test_srv_5_cannot_decide_when_no_version_predicts_otherwise",
        ),
    ),
    "SRV-6": (
        _b(
            "timeout",
            "p95 latency over the budget (warned; failed under --strict)",
            f"{_SRV}test_latency_budget_warns_and_fails_under_strict",
        ),
    ),
}
