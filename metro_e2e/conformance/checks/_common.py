"""What every check uses: the registry of checks by clause id, and small helpers for HTTP, failures, the Iris rows,
the model server and ``latest/``'s model."""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests

from metro_e2e._http import why_no_answer
from metro_e2e.conformance.context import ClauseFailed, RunContext
from metro_e2e.errors import MetroE2EError

if TYPE_CHECKING:
    from metro_e2e.serving import ServingClient

# The workflow's modules (pandas, scikit-learn, MLflow) are imported by the checks that use them: a run of the
# clauses that need none of them (--quick) starts in about a second (docs/testing.md "How long things take").
# A check names them in @registers(imports=...), and the engine loads them before the clause's budget starts:
# importing MLflow takes seconds, which are not the platform's. tests/unit/test_checks.py keeps each list equal to
# the costly modules the check imports as it runs.
Check = Callable[[RunContext], str]
CHECKS: dict[str, Check] = {}  # clause id -> its check; filled by @registers in each component's module
IMPORTS: dict[str, tuple[str, ...]] = {}  # clause id -> the modules its check imports when it runs


def registers(clause_id: str, *, imports: tuple[str, ...] = ()) -> Callable[[Check], Check]:
    """Register the decorated function as the check of ``clause_id`` (the catalogue's id; once per clause);
    ``imports`` are the modules it imports as it runs, loaded by ``prepare`` before its clock starts."""
    from metro_e2e.conformance.catalogue import BY_ID

    def register(check: Check) -> Check:
        if clause_id not in BY_ID or clause_id in CHECKS:
            raise ValueError(f"{check.__name__}: {clause_id!r} is not a catalogue clause, or has a check already")
        CHECKS[clause_id] = check
        IMPORTS[clause_id] = imports
        return check

    return register


def prepare(clause_id: str) -> None:
    """Import what the check of ``clause_id`` imports as it runs (outside its time budget)."""
    for name in IMPORTS.get(clause_id, ()):
        importlib.import_module(name)


def get(ctx: RunContext, url: str, **kwargs) -> requests.Response:
    try:
        response = requests.get(url, timeout=ctx.timeout, allow_redirects=False, **kwargs)
    except requests.RequestException as exc:
        connect, read = ctx.timeout
        why = why_no_answer(exc, url, connect_timeout=connect, read_timeout=read)
        raise ClauseFailed("an HTTP answer", why, url=url) from None
    ctx.evidence(f"GET {url}", response)
    return response


def fail_from(exc: MetroE2EError, expected: str) -> ClauseFailed:
    return ClauseFailed(expected, str(exc))


def load_latest(ctx: RunContext):
    import mlflow.pyfunc

    from metro_e2e import promotion

    folder = tempfile.mkdtemp(prefix="metro-e2e-latest-")
    cfg = ctx.config
    promotion.download_latest(ctx.storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, dest=folder)
    return mlflow.pyfunc.load_model(folder)


def serving_client(ctx: RunContext, host: str | None = "default") -> ServingClient:
    from metro_e2e import serving

    c = serving.ServingClient.from_config(ctx.config)
    if host != "default":
        c.host = host
    return c


def iris_rows(n: int | None = None):
    from metro_e2e import data

    frame = data.iris_frame().drop(columns=[data.TARGET])
    return frame if n is None else frame.iloc[[0, 50, 100, 1, 149][:n]]


def json_or_none(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None
