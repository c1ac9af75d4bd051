"""The clause catalogue: CONTRACT.md as data, the single source for markers, reports and the README table.

Each clause has an id (the public interface), a level (core clauses must
pass; advisory ones warn), a mode (read, write, promote), the clauses it
depends on, its promise, and its time budget: how long its check may take
before it is failed, so a component that hangs fails its clause within a
bound the user can read (``docs/clauses.md``).
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


def clause(clause_id: str) -> Clause:
    """The clause named ``clause_id``; ``KeyError`` with the known ids when there is none."""
    try:
        return BY_ID[clause_id]
    except KeyError:
        raise KeyError(f"unknown clause {clause_id!r}; known: {', '.join(BY_ID)}") from None


def matches(clause_: Clause, selector: str) -> bool:
    """``--skip`` selectors: an exact id (``SRV-6``) or a component prefix (``KFP``)."""
    return selector == clause_.id or selector == clause_.component


def markdown_table() -> str:
    """The README's clause table, generated from the catalogue."""
    rows = ["| id | level | mode | depends on | the promise |", "|---|---|---|---|---|"]
    rows += [f"| {c.id} | {c.level} | {c.mode} | {', '.join(c.depends_on)} | {c.promise} |" for c in CLAUSES]
    return "\n".join(rows)
