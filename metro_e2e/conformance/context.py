"""What one conformance run shares between clauses: target, namespace, options, hand-offs, cleanup, evidence.

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metro_e2e.config import MetroConfig
from metro_e2e.conformance.options import Options

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

NAMESPACE_ROOT = "metro-e2e/"  # every run's objects live under <root><run id>/ (CONTRACT.md: the run's namespace)


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
    """The suite's timeout and retry policy for every client a run uses (docs/conformance.md "Time budgets"): requests and the
    model-server client never retry; MLflow retries once; boto3 (ours and MLflow's) makes up to 3 attempts."""
    from metro_e2e import mlflow_policy, storage

    with mlflow_policy.client_policy(config), storage.client_policy(config):
        yield


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Version:
    """A model version a check trained and registered: the settings it used (its model name), what training
    returned (run id, version, accuracy) and, once located, where its files are."""

    config: MetroConfig
    result: Any
    where: Any = None  # registry.VersionLocation


@dataclass(frozen=True)
class KfpPipeline:
    pipeline_id: str
    version_id: str


@dataclass(frozen=True)
class KfpRun:
    run_id: str
    name: str


@dataclass
class Shared:
    """What a check hands to the checks after it (each field: who sets it -> who reads it)."""

    mlflow_server: str | None = None  # MLF-3 -> the report
    kfp_backend: str | None = None  # KFP-1 -> the report
    trained: Version | None = None  # MLF-5 -> PRM-2
    latest_model: Any = None  # PRM-1, the model loaded from latest/ -> SRV-4, SRV-5
    promoted: Version | None = None  # PRM-2 (SRV-5 when it promotes another) -> SRV-5
    previous_latest: Any = None  # PRM-2, promotion.backup.Backup of latest/ -> cleanup puts it back
    promoting: str | None = None  # PRM-2, the model name it promotes -> cleanup
    serving_restarted: bool = False  # SRV-5 -> cleanup restarts serving again after putting latest/ back
    kfp_pipeline: KfpPipeline | None = None  # KFP-2 -> KFP-3
    kfp_run: KfpRun | None = None  # KFP-3 -> KFP-4


@dataclass
class Created:
    """What checks create, recorded before they create it, so cleanup finds it even after a failure half-way."""

    s3: list[tuple[str, str]] = field(default_factory=list)  # (bucket, prefix)
    experiments: list[str] = field(default_factory=list)  # MLflow experiment names
    models: list[str] = field(default_factory=list)  # registered model names
    pipelines: list[str] = field(default_factory=list)  # KFP pipeline names
    kfp_experiments: list[str] = field(default_factory=list)


@dataclass
class RunContext:
    config: MetroConfig
    options: Options = field(default_factory=Options)
    run_id: str = field(default_factory=new_run_id)
    s3_backend: str | None = None
    shared: Shared = field(default_factory=Shared)  # what a clause hands its dependents
    running: str | None = None  # the clause whose check runs (set by the engine; names its evidence file)
    created: Created = field(default_factory=Created)

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

    def evidence(self, what: str, response: requests.Response | None = None, text: str = "") -> None:
        """Keep a request/response excerpt (secrets masked) under ``--evidence-dir``, in the running clause's file."""
        clause_id = self.running or "run"
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
    Returns what to report, and the backup prefix to keep."""
    from metro_e2e.promotion.backup import restore_latest

    backup, name = ctx.shared.previous_latest, ctx.shared.promoting
    if backup is None or not name:
        return [], None  # latest/ was empty before (PRM-2 says so), or no promotion started
    cfg = ctx.config
    problems, keep, restored = restore_latest(
        ctx.storage, backup, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, name=name
    )
    if restored and ctx.shared.serving_restarted:
        try:
            ctx.restart_serving()
        except Exception as exc:  # noqa: BLE001 - reported as something left for the user
            where = f"s3://{cfg.models_bucket}/{cfg.latest_prefix}"
            what = f"{backup.record['name']} v{backup.record['version']}"
            return [
                f"{where} holds {what} again, but restarting serving failed ({exc}): it still serves the check's model"
            ], None
    return problems, keep


def cleanup(ctx: RunContext) -> list[str]:
    """Delete what the run created (its namespace only); return what could not be deleted or is still there."""
    from metro_e2e.errors import MetroE2EError

    leftovers: list[str] = []
    storage = ctx.storage
    restore_problems, keep = _restore_latest(ctx)
    leftovers += restore_problems
    for bucket in dict.fromkeys(b for b, _ in ctx.created.s3):  # only where a check wrote
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
    if ctx.created.models or ctx.created.experiments:
        from metro_e2e import registry  # MLflow, imported only when a check created something in it

        client = registry.make_client(ctx.config)
        for name in dict.fromkeys(ctx.created.models):
            try:
                with registry.tracking_errors(ctx.config, "delete a registered model"):
                    client.delete_registered_model(name)
            except MetroE2EError as exc:
                if "RESOURCE_DOES_NOT_EXIST" not in str(exc) and "not found" not in str(exc).lower():
                    leftovers.append(f"registered model {name} ({exc.message})")
        for name in dict.fromkeys(ctx.created.experiments):
            try:
                with registry.tracking_errors(ctx.config, "delete an experiment"):
                    experiment = client.get_experiment_by_name(name)
                    if experiment is not None and experiment.lifecycle_stage != "deleted":
                        client.delete_experiment(experiment.experiment_id)
            except MetroE2EError as exc:
                leftovers.append(f"experiment {name} ({exc.message})")
    if ctx.created.pipelines or ctx.created.kfp_experiments:
        from metro_e2e.kfp import Kfp

        kfp = Kfp.from_config(ctx.config)
        for name in dict.fromkeys(ctx.created.pipelines):
            try:
                if (pipeline_id := kfp.pipeline_id(name)) is not None:
                    kfp.delete_pipeline(pipeline_id)
            except MetroE2EError as exc:
                leftovers.append(f"KFP pipeline {name} ({exc.message})")
        for name in dict.fromkeys(ctx.created.kfp_experiments):
            try:
                if (experiment_id := kfp.experiment_id(name)) is not None:
                    kfp.delete_experiment(experiment_id)
            except MetroE2EError as exc:
                leftovers.append(f"KFP experiment {name} ({exc.message})")
    return leftovers
