"""The clause catalogue: CONTRACT.md as data, the single source for the clause tests, markers, reports and
``docs/clauses.md``.

Each clause has an id (the public interface), a level (core clauses must
pass; advisory ones warn), a mode (read, write, promote), the clauses it
depends on, its promise, its time budget (how long its check may take before
it is failed, so a component that hangs fails its clause within a bound the
user can read), whether ``--quick`` runs it, what it needs from the options
(a step image, a serving restart), the name of its test, and the realistic
ways a platform breaks it, each with the tests that show the clause failing
on exactly that. Clauses are declared per component (``gateway.py``,
``s3.py``, ...); each clause's check is registered with its id in
``conformance/checks/``. No other module names a clause id.
"""

from __future__ import annotations

from metro_e2e import __version__
from metro_e2e.conformance.catalogue import gateway, kfp, mlflow, promotion, s3, serving
from metro_e2e.conformance.catalogue._model import (
    ADVISORY,
    CORE,
    PROMOTE,
    READ,
    RESTART,
    STEP_IMAGE,
    WRITE,
    Breakage,
    Budget,
    Clause,
    Need,
)

__all__ = [
    "ADVISORY",
    "CORE",
    "PROMOTE",
    "READ",
    "RESTART",
    "STEP_IMAGE",
    "WRITE",
    "Breakage",
    "Budget",
    "Clause",
    "Need",
]

CLAUSES: tuple[Clause, ...] = (
    *gateway.CLAUSES,
    *s3.CLAUSES,
    *mlflow.CLAUSES,
    *kfp.CLAUSES,
    *promotion.CLAUSES,
    *serving.CLAUSES,
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
    """The clause table of ``docs/conformance.md``, generated from the catalogue."""
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
        "Generated from `metro_e2e/conformance/catalogue/` (`metro-e2e clauses --format docs`); a unit test keeps "
        "this file equal to it and checks that every test named here exists.",
        "",
        "**Budget**: how long a clause's check may take before it is `failed`: seconds of work, plus requests that "
        "may each wait out the connect and read timeouts (`METRO_CONNECT_TIMEOUT`, `METRO_READ_TIMEOUT`: 5 s and "
        '30 s by default) with every retry of the client that sends them (docs/conformance.md, "Time budgets"), plus a wait '
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


LEVEL_WORDS = {"core": "MUST", "advisory": "SHOULD"}  # RFC 2119: a conforming install must pass core clauses
CATALOGUE_DATA = "docs/clauses.yaml"  # the committed copy (a unit test keeps it equal), as Kubernetes keeps its own


def _check_of(clause_id: str) -> str:
    import inspect
    from pathlib import Path

    import metro_e2e.conformance.checks  # noqa: F401 - the checks register themselves
    from metro_e2e.conformance.checks._common import CHECKS

    check = CHECKS[clause_id]
    package = Path(__file__).resolve().parents[3]
    return f"{Path(inspect.getsourcefile(check)).resolve().relative_to(package)}::{check.__name__}"


def _clauses_data() -> list[dict]:
    return [
        {
            "id": c.id,
            "level": LEVEL_WORDS[c.level],
            "kind": c.level,
            "mode": c.mode,
            "depends_on": list(c.depends_on),
            "quick": c.quick,
            "description": c.promise,
            "changed_in": c.changed_in,
            "check": _check_of(c.id),
            "breakages": [{"kind": b.kind, "what": b.what, "tests": list(b.tests)} for b in c.breakages],
        }
        for c in CLAUSES
    ]


def catalogue_version(clauses: list[dict] | None = None) -> str:
    """The suite's version and a digest of every clause as ``catalogue`` emits it (``clauses``, when already made):
    any change to a clause changes it."""
    import hashlib
    import json

    data = _clauses_data() if clauses is None else clauses
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    return f"{__version__}+{digest}"


def catalogue() -> dict:
    """Every clause as data (``metro-e2e clauses --format yaml|json``; ``docs/clauses.yaml`` is the committed copy)."""
    clauses = _clauses_data()
    return {"catalogue_version": catalogue_version(clauses), "suite_version": __version__, "clauses": clauses}
