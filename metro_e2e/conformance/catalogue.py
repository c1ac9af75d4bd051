"""The clause catalogue: CONTRACT.md as data, the single source for markers, reports, the README table and
``docs/clauses.md``.

Each clause has an id (the public interface), a level (core clauses must
pass; advisory ones warn), a mode (read, write, promote), the clauses it
depends on, its promise, its time budget (how long its check may take before
it is failed, so a component that hangs fails its clause within a bound the
user can read), and the realistic ways a platform breaks it, each with the
test that shows the clause failing on exactly that (``BREAKAGES``; a unit test
checks every named test exists).
"""

from __future__ import annotations

from dataclasses import dataclass

CORE, ADVISORY = "core", "advisory"
READ, WRITE, PROMOTE = "read", "write", "promote"
QUICK = ("GW-1", "S3-1", "MLF-1", "KFP-1", "SRV-1")


@dataclass(frozen=True)
class Budget:
    """A clause's time budget: ``seconds`` of work plus ``requests`` requests that may each wait out the connect
    and read timeouts (the client's retries included), plus the wait that ``option`` names, if any."""

    seconds: float
    requests: int = 1
    option: str | None = None  # an Options field the user sets: KFP-3's run timeout, SRV-5's restart wait

    def describe(self) -> str:
        text = f"{self.seconds:g} s + {self.requests} × (connect + read timeout)"
        return text + (f" + {OPTION_WAITS[self.option]}" if self.option else "")


OPTION_WAITS = {"kfp_run_timeout_s": "the KFP run timeout", "restart_timeout_s": "--restart-timeout"}


@dataclass(frozen=True)
class Clause:
    id: str
    level: str
    mode: str
    depends_on: tuple[str, ...]
    promise: str
    budget: Budget

    @property
    def component(self) -> str:
        """The prefix that ``--skip`` accepts for the whole component (``KFP``, ``SRV``...)."""
        return self.id.split("-", 1)[0]

    @property
    def breakages(self) -> tuple[Breakage, ...]:
        return BREAKAGES[self.id]


@dataclass(frozen=True)
class Breakage:
    """A realistic way a platform breaks a clause's promise, and the tests that show the clause failing on it
    (pytest node ids from the repository root)."""

    kind: str  # no answer, wrong status, wrong content, wrong object, partial state, missing permission, ...
    what: str
    tests: tuple[str, ...]


def _c(id_: str, level: str, mode: str, deps: str, promise: str, budget: Budget) -> Clause:
    return Clause(id_, level, mode, tuple(d.strip() for d in deps.split(",") if d.strip()), promise, budget)


CLAUSES: tuple[Clause, ...] = (
    _c(
        "GW-1", CORE, READ, "", "The gateway answers HTTP at the external URL within the connect timeout.", Budget(5, 1)
    ),
    _c(
        "S3-1",
        CORE,
        READ,
        "GW-1",
        "The S3 API is served at the gateway root; a SigV4-signed ListBuckets with the "
        "configured credentials succeeds.",
        Budget(10, 3),
    ),
    _c("S3-2", CORE, READ, "S3-1", "Buckets `ml-models` and `ml-data` exist.", Budget(10, 3)),
    _c(
        "S3-3",
        CORE,
        WRITE,
        "S3-2",
        "An object written under the namespace in `ml-data` reads back byte-identical "
        "(single put and a multipart upload of at least 8 MiB), lists, and deletes.",
        Budget(60, 3),
    ),
    _c(
        "S3-4",
        CORE,
        READ,
        "S3-1",
        "An unsigned (anonymous) request cannot list or read `ml-models` or `ml-data`.",
        Budget(15, 3),
    ),
    _c(
        "S3-5",
        ADVISORY,
        READ,
        "S3-1",
        "The credentials in use are not the published defaults `minio` / `minio123`.",
        Budget(5, 0),
    ),
    _c(
        "MLF-1",
        CORE,
        READ,
        "GW-1",
        "The MLflow REST API answers through `<url>/mlflow` with the Host header a client "
        "naturally sends (experiments search → 200).",
        Budget(5, 1),
    ),
    _c(
        "MLF-2",
        CORE,
        READ,
        "MLF-1",
        "The MLflow UI loads at `<url>/mlflow/` (HTML, and the assets it references load).",
        Budget(15, 1),
    ),
    _c(
        "MLF-3",
        CORE,
        READ,
        "MLF-1",
        "The server reports its version, and the workflow's MLflow client is compatible "
        "with it (a tested pair; a major-version skew fails with both versions named).",
        Budget(5, 1),
    ),
    _c(
        "MLF-4",
        CORE,
        WRITE,
        "MLF-3, S3-2",
        "A new experiment's artifact location is under `s3://ml-models/`.",
        Budget(10, 2),
    ),
    _c(
        "MLF-5",
        CORE,
        WRITE,
        "MLF-4",
        "A run logs a param, a metric and an sklearn model; the model's files land in "
        "`ml-models`; registering it creates exactly one new version of the registered model.",
        Budget(60, 3),
    ),
    _c(
        "KFP-1",
        CORE,
        READ,
        "GW-1",
        "The KFP API answers at `<url>/pipeline/apis/v2beta1/healthz` and the UI at `<url>/pipeline/`.",
        Budget(10, 2),
    ),
    _c(
        "KFP-2",
        CORE,
        WRITE,
        "KFP-1",
        "The compiled Iris pipeline uploads as a pipeline (and is deleted afterwards).",
        Budget(60, 3),
    ),
    _c(
        "KFP-3",
        CORE,
        WRITE,
        "KFP-2, S3-2, MLF-1",
        "A run of the Iris pipeline reaches `SUCCEEDED` within the run "
        "timeout; on any other end state the failing task and its error are reported.",
        Budget(60, 3, "kfp_run_timeout_s"),
    ),
    _c(
        "KFP-4",
        CORE,
        WRITE,
        "KFP-3",
        "That run produced one new MLflow run in the experiment (tagged with the KFP run "
        "id) and one new registered model version.",
        Budget(20, 2),
    ),
    _c(
        "PRM-1",
        CORE,
        READ,
        "S3-2",
        "`ml-models/latest/` holds one complete MLflow model (an `MLmodel` file and every "
        "file it references) that `mlflow.pyfunc.load_model` loads.",
        Budget(30, 3),
    ),
    _c(
        "PRM-2",
        CORE,
        PROMOTE,
        "MLF-5, PRM-1",
        "Promoting a registered version replaces `latest/` with exactly that "
        "version's files (MLflow 2 and 3 layouts), with no moment where `latest/` is empty or mixed, and records which "
        "version it holds.",
        Budget(60, 3),
    ),
    _c(
        "SRV-1",
        CORE,
        READ,
        "GW-1",
        "`POST <url>/mlflow-model/invocations` with `Host: mlflow-model.local` answers 200 "
        '`{"predictions": [...]}` for Iris rows in `dataframe_split` and `dataframe_records` form; every prediction '
        "is a valid Iris class.",
        Budget(10, 1),
    ),
    _c(
        "SRV-2",
        CORE,
        READ,
        "SRV-1",
        "The same request without that Host header does not reach the model; "
        "`<url>/mlflow-model` redirects to `<url>/mlflow-model/`.",
        Budget(10, 1),
    ),
    _c(
        "SRV-3",
        CORE,
        READ,
        "SRV-1",
        "Malformed JSON, an object with no or two input keys, and wrong columns get 400 "
        "with a JSON `error_code`; an unsupported content type gets 415. Never 5xx.",
        Budget(10, 1),
    ),
    _c(
        "SRV-4",
        CORE,
        READ,
        "SRV-1, PRM-1",
        "The served model is the model in `latest/`: its predictions on all 150 Iris "
        "rows equal those of the model loaded from `latest/`.",
        Budget(20, 1),
    ),
    _c(
        "SRV-5",
        CORE,
        PROMOTE,
        "PRM-2, SRV-4",
        "After promoting the version trained in this run and restarting serving "
        "(only where restart is allowed and possible), the endpoint serves that version.",
        Budget(660, 3, "restart_timeout_s"),
    ),
    _c(
        "SRV-6",
        ADVISORY,
        READ,
        "SRV-1",
        "Latency budget: p95 of 50 sequential single-row requests is under the configured budget (default 250 ms).",
        Budget(30, 1),
    ),
)
BY_ID = {c.id: c for c in CLAUSES}


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


def clause(clause_id: str) -> Clause:
    """The clause named ``clause_id``; ``KeyError`` with the known ids when there is none."""
    try:
        return BY_ID[clause_id]
    except KeyError:
        raise KeyError(f"unknown clause {clause_id!r}; known: {', '.join(BY_ID)}") from None


def matches(clause_: Clause, selector: str) -> bool:
    """``--skip`` selectors: an exact id (``SRV-6``) or a component prefix (``KFP``)."""
    return selector == clause_.id or selector == clause_.component


def default_budget_s(clause_: Clause) -> float:
    """``clause_``'s budget with the default timeouts and waits (what the docs show)."""
    from metro_e2e.config import MetroConfig
    from metro_e2e.conformance.context import Options

    defaults, options = MetroConfig(), Options()
    extra = float(getattr(options, clause_.budget.option)) if clause_.budget.option else 0.0
    return clause_.budget.seconds + clause_.budget.requests * (defaults.connect_timeout + defaults.read_timeout) + extra


def markdown_table() -> str:
    """The README's clause table, generated from the catalogue."""
    rows = ["| id | level | mode | depends on | budget | the promise |", "|---|---|---|---|---|---|"]
    rows += [
        f"| {c.id} | {c.level} | {c.mode} | {', '.join(c.depends_on)} | {default_budget_s(c):g} s | {c.promise} |"
        for c in CLAUSES
    ]
    return "\n".join(rows)


def clause_docs() -> str:
    """``docs/clauses.md``: every clause with its budget and the breakages that are proven to fail it."""
    out = [
        "# The clauses: their promises, time budgets, and the breakages proven to fail them",
        "",
        "Generated from `metro_e2e/conformance/catalogue.py` (`metro-e2e clauses --format docs`); a unit test keeps "
        "this file equal to it and checks that every test named here exists.",
        "",
        "**Budget**: how long a clause's check may take before it is `failed`: seconds of work, plus requests that "
        "may each wait out the connect and read timeouts (`METRO_CONNECT_TIMEOUT`, `METRO_READ_TIMEOUT`: 5 s and "
        '30 s by default) with every retry of the client that sends them (README, "Time budgets"), plus a wait '
        "the user sets. The report gives each clause's budget with the run's own timeouts.",
        "",
        "**Breakages**: the realistic ways a platform breaks the promise. Each test named breaks the platform that "
        "way and asserts the whole outcome: exactly that clause fails (plus any that must fail with it), the detail "
        "names the cause, and its dependents are blocked.",
    ]
    for c in CLAUSES:
        out += [
            "",
            f"## {c.id} ({c.level}, {c.mode})",
            "",
            c.promise,
            "",
            f"Depends on: {', '.join(c.depends_on) or 'nothing'}. "
            f"Budget: {c.budget.describe()} = {default_budget_s(c):g} s with the defaults.",
            "",
            "| kind | breakage | proven by |",
            "|---|---|---|",
        ]
        out += [f"| {b.kind} | {b.what} | {'<br>'.join(f'`{t}`' for t in b.tests)} |" for b in c.breakages]
    return "\n".join(out) + "\n"
