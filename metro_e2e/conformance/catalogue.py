"""The clause catalogue: CONTRACT.md as data, the single source for the clause tests, markers, reports and
``docs/clauses.md``.

Each clause has an id (the public interface), a level (core clauses must
pass; advisory ones warn), a mode (read, write, promote), the clauses it
depends on, its promise, its time budget (how long its check may take before
it is failed, so a component that hangs fails its clause within a bound the
user can read), whether ``--quick`` runs it, what it needs from the options
(a step image, a serving restart), and the name of its test. The realistic
ways a platform breaks each clause, with the tests that prove it, are in
``breakages.py``; each clause's check is registered with its id in
``checks/``. No other module names a clause id.
"""

from __future__ import annotations

from dataclasses import dataclass

CORE, ADVISORY = "core", "advisory"
READ, WRITE, PROMOTE = "read", "write", "promote"


@dataclass(frozen=True)
class Budget:
    """A clause's time budget: ``seconds`` of work plus ``requests`` requests that may each wait out the connect
    and read timeouts (the client's retries included), plus the wait that ``option`` names, if any."""

    seconds: float
    requests: int = 1
    option: str | None = None  # an Options field the user sets: KFP-3's run timeout, SRV-5's restart wait

    def describe(self) -> str:
        from metro_e2e.conformance.options import wait_name

        text = f"{self.seconds:g} s + {self.requests} × (connect + read timeout)"
        return text + (f" + {wait_name(self.option)}" if self.option else "")


@dataclass(frozen=True)
class Need:
    """What a clause needs from the run's options before it can run: the ``option`` (an ``Options`` field) must be
    set; ``why`` says what for (the skip reason adds the option that enables it)."""

    option: str
    why: str


STEP_IMAGE = Need("step_image", "runs the pipeline in a step image")
RESTART = Need("restart_serving", "needs a serving restart")


@dataclass(frozen=True)
class Clause:
    id: str
    level: str
    mode: str
    depends_on: tuple[str, ...]
    promise: str
    budget: Budget
    slug: str  # its test is test_<id>_<slug> (the JUnit test case's name)
    quick: bool = False  # part of --quick: is the install alive
    needs: Need | None = None

    @property
    def component(self) -> str:
        """The prefix that ``--skip`` accepts for the whole component (``KFP``, ``SRV``...)."""
        return self.id.split("-", 1)[0]

    @property
    def test_name(self) -> str:
        return f"test_{self.id.lower().replace('-', '_')}_{self.slug}"

    @property
    def breakages(self) -> tuple:
        from metro_e2e.conformance.breakages import BREAKAGES

        return BREAKAGES[self.id]


def _c(id_: str, level: str, mode: str, deps: str, promise: str, budget: Budget, **more) -> Clause:
    return Clause(id_, level, mode, tuple(d.strip() for d in deps.split(",") if d.strip()), promise, budget, **more)


CLAUSES: tuple[Clause, ...] = (
    _c(
        "GW-1",
        CORE,
        READ,
        "",
        "The gateway answers HTTP at the external URL within the connect timeout.",
        Budget(5, 1),
        slug="gateway_answers",
        quick=True,
    ),
    _c(
        "S3-1",
        CORE,
        READ,
        "GW-1",
        "The S3 API is served at the gateway root; a SigV4-signed ListBuckets with the "
        "configured credentials succeeds.",
        Budget(10, 3),
        slug="signed_list_buckets",
        quick=True,
    ),
    _c(
        "S3-2",
        CORE,
        READ,
        "S3-1",
        "Buckets `ml-models` and `ml-data` exist.",
        Budget(10, 3),
        slug="platform_buckets_exist",
    ),
    _c(
        "S3-3",
        CORE,
        WRITE,
        "S3-2",
        "An object written under the namespace in `ml-data` reads back byte-identical "
        "(single put and a multipart upload of at least 8 MiB), lists, and deletes.",
        Budget(60, 3),
        slug="write_read_list_delete",
    ),
    _c(
        "S3-4",
        CORE,
        READ,
        "S3-1",
        "An unsigned (anonymous) request cannot list or read `ml-models` or `ml-data`.",
        Budget(15, 3),
        slug="anonymous_refused",
    ),
    _c(
        "S3-5",
        ADVISORY,
        READ,
        "S3-1",
        "The credentials in use are not the published defaults `minio` / `minio123`.",
        Budget(5, 0),
        slug="not_default_credentials",
    ),
    _c(
        "MLF-1",
        CORE,
        READ,
        "GW-1",
        "The MLflow REST API answers through `<url>/mlflow` with the Host header a client "
        "naturally sends (experiments search → 200).",
        Budget(5, 1),
        slug="rest_api_through_gateway",
        quick=True,
    ),
    _c(
        "MLF-2",
        CORE,
        READ,
        "MLF-1",
        "The MLflow UI loads at `<url>/mlflow/` (HTML, and the assets it references load).",
        Budget(15, 1),
        slug="ui_loads",
    ),
    _c(
        "MLF-3",
        CORE,
        READ,
        "MLF-1",
        "The server reports its version, and the workflow's MLflow client is compatible "
        "with it (a tested pair; a major-version skew fails with both versions named).",
        Budget(5, 1),
        slug="client_server_pair",
    ),
    _c(
        "MLF-4",
        CORE,
        WRITE,
        "MLF-3, S3-2",
        "A new experiment's artifact location is under `s3://ml-models/`.",
        Budget(10, 2),
        slug="artifact_location",
    ),
    _c(
        "MLF-5",
        CORE,
        WRITE,
        "MLF-4",
        "A run logs a param, a metric and an sklearn model; the model's files land in "
        "`ml-models`; registering it creates exactly one new version of the registered model.",
        Budget(60, 3),
        slug="log_and_register",
    ),
    _c(
        "KFP-1",
        CORE,
        READ,
        "GW-1",
        "The KFP API answers at `<url>/pipeline/apis/v2beta1/healthz` and the UI at `<url>/pipeline/`.",
        Budget(10, 2),
        slug="api_and_ui",
        quick=True,
    ),
    _c(
        "KFP-2",
        CORE,
        WRITE,
        "KFP-1",
        "The compiled Iris pipeline uploads as a pipeline (and is deleted afterwards).",
        Budget(60, 3),
        slug="pipeline_uploads",
        needs=STEP_IMAGE,
    ),
    _c(
        "KFP-3",
        CORE,
        WRITE,
        "KFP-2, S3-2, MLF-1",
        "A run of the Iris pipeline reaches `SUCCEEDED` within the run "
        "timeout; on any other end state the failing task and its error are reported.",
        Budget(60, 3, "kfp_run_timeout_s"),
        slug="run_succeeds",
        needs=STEP_IMAGE,
    ),
    _c(
        "KFP-4",
        CORE,
        WRITE,
        "KFP-3",
        "That run produced one new MLflow run in the experiment (tagged with the KFP run "
        "id) and one new registered model version.",
        Budget(20, 2),
        slug="run_lineage",
        needs=STEP_IMAGE,
    ),
    _c(
        "PRM-1",
        CORE,
        READ,
        "S3-2",
        "`ml-models/latest/` holds one complete MLflow model (an `MLmodel` file and every "
        "file it references) that `mlflow.pyfunc.load_model` loads.",
        Budget(30, 3),
        slug="latest_is_a_complete_model",
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
        slug="promotion",
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
        slug="predictions",
        quick=True,
    ),
    _c(
        "SRV-2",
        CORE,
        READ,
        "SRV-1",
        "The same request without that Host header does not reach the model; "
        "`<url>/mlflow-model` redirects to `<url>/mlflow-model/`.",
        Budget(10, 1),
        slug="host_routing_and_redirect",
    ),
    _c(
        "SRV-3",
        CORE,
        READ,
        "SRV-1",
        "Malformed JSON, an object with no or two input keys, and wrong columns get 400 "
        "with a JSON `error_code`; an unsupported content type gets 415. Never 5xx.",
        Budget(10, 1),
        slug="bad_input_is_4xx",
    ),
    _c(
        "SRV-4",
        CORE,
        READ,
        "SRV-1, PRM-1",
        "The served model is the model in `latest/`: its predictions on all 150 Iris "
        "rows equal those of the model loaded from `latest/`.",
        Budget(20, 1),
        slug="serves_latest",
    ),
    _c(
        "SRV-5",
        CORE,
        PROMOTE,
        "PRM-2, SRV-4",
        "After promoting the version trained in this run and restarting serving "
        "(only where restart is allowed and possible), the endpoint serves that version.",
        Budget(660, 3, "restart_timeout_s"),
        slug="serves_promoted_after_restart",
        needs=RESTART,
    ),
    _c(
        "SRV-6",
        ADVISORY,
        READ,
        "SRV-1",
        "Latency budget: p95 of 50 sequential single-row requests is under the configured budget (default 250 ms).",
        Budget(30, 1),
        slug="latency_budget",
    ),
)
BY_ID = {c.id: c for c in CLAUSES}
QUICK = tuple(c.id for c in CLAUSES if c.quick)
GATEWAY = "GW-1"  # the clause every other one depends on: nothing else can run when it fails
BEHIND_GATEWAY = ("S3-1", "MLF-1", "SRV-1")  # all failing while GW-1 passes: the URL is not a Metro gateway
NOT_LOCAL = "KFP"  # the component the local stack does not run


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
    from metro_e2e.conformance.options import Options

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
