"""What one conformance run shares between clauses: target, namespace, options, results, cleanup, evidence.

Everything a check creates is recorded here and lives in the run's namespace
(CONTRACT.md): S3 keys under ``metro-e2e/<run-id>/``, experiment and model
``metro-e2e-<run-id>``, KFP pipeline ``metro-e2e-<run-id>``. ``cleanup()``
deletes it all and returns what it could not delete (the report's
``leftovers``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import requests

from metro_e2e.config import MetroConfig

log = logging.getLogger(__name__)

NAMESPACE_ROOT = "metro-e2e/"  # every run's objects live under <root><run id>/ (CONTRACT.md: the run's namespace)
DEFAULT_LATENCY_BUDGET_MS = 250.0
DEFAULT_KFP_RUN_TIMEOUT_S = 1800.0


class ClauseFailed(AssertionError):
    """A clause's promise was broken: what was expected, what came back, where (and what to do about it)."""

    def __init__(
        self, expected: str, got: str, *, url: str | None = None, body: str | None = None, hint: str | None = None
    ) -> None:
        self.expected, self.got, self.url, self.body = expected, got, url, body
        text = f"expected {expected}; got {got}"
        if url:
            text += f" (at {url})"
        if body:
            text += f"; body: {body[:200]!r}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class Undecided(Exception):
    """The check cannot tell whether the promise holds (its verdict is ``error``, never a pass)."""


class BudgetExceeded(BaseException):
    """Raised into a check that outlives its clause's time budget.

    A ``BaseException`` so that no ``except Exception`` inside a client library swallows it.
    """


@contextlib.contextmanager
def client_policy(config: MetroConfig) -> Iterator[None]:
    """The suite's timeout and retry policy for every client a run uses (README "Time budgets"): requests and the
    model-server client never retry; MLflow retries once; boto3 (ours and MLflow's) makes up to 3 attempts."""
    from metro_e2e import registry, storage

    with registry.client_policy(config), storage.client_policy(config):
        yield


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class Options:
    allow_promote: bool = False
    restart_serving: str | Callable[[], Any] | None = None
    strict: bool = False
    quick: bool = False
    skip: tuple[str, ...] = ()
    skip_reasons: dict[str, str] = field(default_factory=dict)
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS
    step_image: str | None = None
    kfp_run_timeout_s: float = DEFAULT_KFP_RUN_TIMEOUT_S
    restart_timeout_s: float = 120.0
    evidence_dir: Path | None = None


@dataclass
class RunContext:
    config: MetroConfig
    options: Options = field(default_factory=Options)
    run_id: str = field(default_factory=new_run_id)
    s3_backend: str | None = None
    results: dict[str, Any] = field(default_factory=dict)  # what a clause hands its dependents
    # what checks create, recorded before they create it (S3 (bucket, prefix); MLflow experiment and registered model
    # names; KFP pipeline and experiment names), so cleanup finds it even after a failure half-way
    created: dict[str, list] = field(
        default_factory=lambda: {"s3": [], "experiments": [], "models": [], "pipelines": [], "kfp_experiments": []}
    )
    versions: dict[str, str | None] = field(default_factory=dict)

    @cached_property
    def storage(self):
        """One S3 client for the whole run (the checks share it)."""
        from metro_e2e.storage import Storage

        return Storage(self.config)

    @property
    def namespace(self) -> str:
        return f"{NAMESPACE_ROOT}{self.run_id}/"

    @property
    def name(self) -> str:
        return f"metro-e2e-{self.run_id}"

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.config.connect_timeout, self.config.read_timeout)

    def evidence(self, clause_id: str, what: str, response: requests.Response | None = None, text: str = "") -> None:
        """Keep a request/response excerpt (secrets masked) under ``--evidence-dir``."""
        if not self.options.evidence_dir:
            return
        folder = Path(self.options.evidence_dir)
        folder.mkdir(parents=True, exist_ok=True)
        record = {"clause": clause_id, "what": what, "note": text}
        if response is not None:
            record.update(
                method=response.request.method,
                url=response.url,
                status=response.status_code,
                request_headers={k: v for k, v in response.request.headers.items() if k.lower() != "authorization"},
                body_excerpt=response.text[:500],
            )
        line = self.config.mask(json.dumps(record))
        with open(folder / f"{clause_id}.jsonl", "a") as out:
            out.write(line + "\n")

    def restart_serving(self) -> str:
        action = self.options.restart_serving
        if action is None:
            raise RuntimeError("restart not configured")
        if callable(action):
            return str(action())
        done = subprocess.run(shlex.split(action), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise ClauseFailed(
                "the --restart-serving command to succeed",
                f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}",
            )
        return "restarted"


def _restore_latest(ctx: RunContext) -> tuple[list[str], str | None]:
    """Promote mode: put back what ``latest/`` held before PRM-2 (and serve it again if SRV-5 restarted serving).

    ``latest/`` is put back when it holds the check's model or a promotion of it that did not finish; it is left
    alone when the check never changed it, or when someone else promoted since (then the copy is kept and named).
    Returns what to report, and the backup prefix to keep.
    """
    from metro_e2e import promotion
    from metro_e2e.errors import MetroE2EError

    previous, name = ctx.results.get("previous_latest"), ctx.results.get("promoting")
    if not previous or not name:
        return [], None  # latest/ was empty before (PRM-2 says so), or no promotion started
    backup, record, before = previous
    cfg, storage = ctx.config, ctx.storage
    where = f"s3://{cfg.models_bucket}/{cfg.latest_prefix}"
    what = f"{record['name']} v{record['version']}"
    kept = f"its copy is kept at s3://{cfg.models_bucket}/{backup}"
    try:
        marker = promotion.read_marker(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
        unfinished = promotion.pending(
            storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, marker=marker
        )
        ours = (marker or {}).get("name") == name or any(j.get("name") == name for j in unfinished)
        if not ours and marker == before and _same_files(ctx, cfg.latest_prefix, backup):
            return [], None  # the check's promotion failed before it changed latest/
        if not ours and marker != before:
            return [
                f"{where} holds {(marker or {}).get('name')} v{(marker or {}).get('version')} at the end, not the "
                f"check's model (someone else promoted during the run): {what} was not put back; {kept}"
            ], backup
        promotion.copy_to_latest(
            storage, bucket=cfg.models_bucket, source_prefix=backup, latest_prefix=cfg.latest_prefix, record=record
        )
        promotion.discard(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, name=name)
    except MetroE2EError as exc:
        return [f"{where} may still hold the check's model: putting {what} back failed ({exc.message}); {kept}"], backup
    if ctx.results.get("serving_restarted"):
        try:
            ctx.restart_serving()
        except Exception as exc:  # noqa: BLE001 - reported as something left for the user
            return [
                f"{where} holds {what} again, but restarting serving failed ({exc}): it still serves the check's model"
            ], None
    return [], None


def _same_files(ctx: RunContext, prefix: str, other: str) -> bool:
    """Whether two prefixes of the models bucket hold the same files (names and ETags; the marker aside)."""
    from metro_e2e import promotion

    def files(at: str) -> dict[str, str]:
        listed = ctx.storage.list_objects(ctx.config.models_bucket, at)
        return {o.key[len(at) :]: o.etag for o in listed if not o.key.endswith(promotion.MARKER_NAME)}

    here = files(prefix)
    return bool(here) and all(here.values()) and here == files(other)


def cleanup(ctx: RunContext) -> list[str]:
    """Delete what the run created (its namespace only); return what could not be deleted or is still there."""
    from metro_e2e import registry
    from metro_e2e.errors import MetroE2EError

    leftovers: list[str] = []
    storage = ctx.storage
    restore_problems, keep = _restore_latest(ctx)
    leftovers += restore_problems
    for bucket in dict.fromkeys(b for b, _ in ctx.created["s3"]):  # only where a check wrote
        try:
            if keep and bucket == ctx.config.models_bucket:  # the only copy of what latest/ held: reported, kept
                storage.delete_keys(
                    bucket, [k for k in storage.list_keys(bucket, ctx.namespace) if not k.startswith(keep)]
                )
            else:
                storage.delete_prefix(bucket, ctx.namespace)
            left = [k for k in storage.list_keys(bucket, ctx.namespace) if not (keep and k.startswith(keep))]
            leftovers += [f"s3://{bucket}/{k}" for k in left]
        except MetroE2EError as exc:
            leftovers.append(f"s3://{bucket}/{ctx.namespace} ({exc.message})")
    if ctx.created["models"] or ctx.created["experiments"]:
        client = registry.make_client(ctx.config)
        for name in dict.fromkeys(ctx.created["models"]):
            try:
                with registry.tracking_errors(ctx.config, "delete a registered model"):
                    client.delete_registered_model(name)
            except MetroE2EError as exc:
                if "RESOURCE_DOES_NOT_EXIST" not in str(exc) and "not found" not in str(exc).lower():
                    leftovers.append(f"registered model {name} ({exc.message})")
        for name in dict.fromkeys(ctx.created["experiments"]):
            try:
                with registry.tracking_errors(ctx.config, "delete an experiment"):
                    experiment = client.get_experiment_by_name(name)
                    if experiment is not None and experiment.lifecycle_stage != "deleted":
                        client.delete_experiment(experiment.experiment_id)
            except MetroE2EError as exc:
                leftovers.append(f"experiment {name} ({exc.message})")
    if ctx.created["pipelines"] or ctx.created["kfp_experiments"]:
        from metro_e2e.kfp import Kfp

        kfp = Kfp(ctx.config.kfp_url, connect_timeout=ctx.config.connect_timeout, read_timeout=ctx.config.read_timeout)
        for name in dict.fromkeys(ctx.created["pipelines"]):
            try:
                if (pipeline_id := kfp.pipeline_id(name)) is not None:
                    kfp.delete_pipeline(pipeline_id)
            except MetroE2EError as exc:
                leftovers.append(f"KFP pipeline {name} ({exc.message})")
        for name in dict.fromkeys(ctx.created["kfp_experiments"]):
            try:
                if (experiment_id := kfp.experiment_id(name)) is not None:
                    kfp.delete_experiment(experiment_id)
            except MetroE2EError as exc:
                leftovers.append(f"KFP experiment {name} ({exc.message})")
    return leftovers
