"""The MLflow model server behind the gateway. Its clauses (CONTRACT.md), each with the breakages proven to fail it; its checks are in
``conformance/checks/serving.py``."""

from metro_e2e.conformance.catalogue._model import (
    ADVISORY,
    BAD_INPUT,
    CORE,
    FAULT,
    PROMOTE,
    READ,
    RESTART,
    SRV,
    UNIT,
    Budget,
    breakage,
    declare,
    stops_answering,
)

CLAUSES = (
    declare(
        "SRV-1",
        CORE,
        READ,
        "GW-1",
        "`POST <url>/mlflow-model/invocations` with `Host: mlflow-model.local` answers 200 "
        '`{"predictions": [...]}` for Iris rows in `dataframe_split` and `dataframe_records` form; every prediction '
        "is a valid Iris class.",
        Budget(10, 1),
        slug="predictions",
        quick=True,
        breakages=(
            breakage(
                "wrong status",
                "no route for Host mlflow-model.local (the request reaches S3)",
                f"{SRV}test_gateway_without_host_routing_fails_srv_1",
            ),
            breakage("wrong content", "serving answers 200 in plain text", f"{BAD_INPUT}[serving-answers-non-json]"),
            breakage(
                "wrong content",
                "predictions that are not Iris classes, or not one per row",
                f"{UNIT}test_srv_1_fails_unless_every_row_gets_an_iris_class",
            ),
            *stops_answering("model-server"),
            breakage("crash", "the model server killed while the check runs", f"{FAULT}[serving-killed]"),
        ),
    ),
    declare(
        "SRV-2",
        CORE,
        READ,
        "SRV-1",
        "The same request without that Host header does not reach the model; "
        "`<url>/mlflow-model` redirects to `<url>/mlflow-model/`.",
        Budget(10, 1),
        slug="host_routing_and_redirect",
        breakages=(
            breakage(
                "wrong status",
                "no redirect from /mlflow-model to /mlflow-model/",
                f"{SRV}test_gateway_without_the_redirect_fails_srv_2",
            ),
            breakage(
                "too permissive",
                "the model answers requests without the Host header",
                f"{SRV}test_model_reachable_without_the_host_header_fails_srv_2",
                f"{UNIT}test_srv_2_counts_the_model_servers_own_error_as_reaching_it",
            ),
            breakage(
                "wrong status",
                "the request without the Host header gets a 5xx: where it went cannot be told",
                f"{UNIT}test_srv_2_cannot_pass_on_a_server_error",
            ),
        ),
    ),
    declare(
        "SRV-3",
        CORE,
        READ,
        "SRV-1",
        "Malformed JSON, an object with no or two input keys, and wrong columns get 400 "
        "with a JSON `error_code`; an unsupported content type gets 415. Never 5xx.",
        Budget(10, 1),
        slug="bad_input_is_4xx",
        breakages=(
            breakage(
                "wrong status",
                "malformed input answered 500 (no input validation)",
                f"{SRV}test_model_server_answering_500_to_bad_input_fails_srv_3",
            ),
            breakage(
                "wrong status",
                "bad input answered 200, or 400 without a JSON error_code",
                f"{UNIT}test_srv_3_fails_unless_bad_input_gets_a_4xx_with_an_error_code",
            ),
        ),
    ),
    declare(
        "SRV-4",
        CORE,
        READ,
        "SRV-1, PRM-1",
        "The served model is the model in `latest/`: its predictions on all 150 Iris "
        "rows equal those of the model loaded from `latest/`.",
        Budget(20, 1),
        slug="serves_latest",
        breakages=(
            breakage(
                "wrong object",
                "a new model promoted, serving not restarted (a stale model)",
                f"{SRV}test_stale_model_fails_srv_4",
            ),
        ),
    ),
    declare(
        "SRV-5",
        CORE,
        PROMOTE,
        "PRM-2, SRV-4",
        "After promoting the version trained in this run and restarting serving "
        "(only where restart is allowed and possible), the endpoint serves that version.",
        Budget(660, 3, "restart_timeout_s"),
        slug="serves_promoted_after_restart",
        needs=RESTART,
        breakages=(
            breakage("no-op", "the restart does nothing", f"{SRV}test_a_restart_that_does_nothing_fails_srv_5"),
            breakage(
                "undecidable",
                "the served model predicts like the promoted one (a model trained the default way): SRV-5 "
                "promotes a version that predicts otherwise, so a no-op restart still fails",
                f"{SRV}test_a_noop_restart_fails_srv_5_even_when_the_served_model_predicts_like_the_checks",
                f"{UNIT}test_srv_5_cannot_decide_when_no_version_predicts_otherwise",
            ),
        ),
    ),
    declare(
        "SRV-6",
        ADVISORY,
        READ,
        "SRV-1",
        "Latency budget: p95 of 50 sequential single-row requests is under the configured budget (default 250 ms).",
        Budget(30, 1),
        slug="latency_budget",
        breakages=(
            breakage(
                "timeout",
                "p95 latency over the budget (warned; failed under --strict)",
                f"{SRV}test_latency_budget_warns_and_fails_under_strict",
            ),
        ),
    ),
)
