"""The machine-readable report of a conformance run (schema: ``report.schema.json`` beside this file)."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from metro_e2e import __version__
from metro_e2e.conformance.catalogue import CLAUSES
from metro_e2e.conformance.engine import SKIPPED, ClauseResult, mode_name
from metro_e2e.errors import InputError

SCHEMA = Path(__file__).with_name("report.schema.json")


def _version_of(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def ordered_results(run) -> list[ClauseResult]:
    """One result per clause in catalogue order; a clause that never ran is ``skipped`` with the reason."""
    out = []
    for clause in CLAUSES:
        result = run.results.get(clause.id)
        out.append(result or ClauseResult(clause.id, clause.level, clause.mode, SKIPPED, "not run in this session"))
    return out


def build_report(run) -> dict:
    ctx = run.ctx
    return {
        "suite_version": __version__,
        "target": ctx.config.url,
        "mode": mode_name(ctx.options),
        "started_at": run.started_at,
        "s3_backend": ctx.s3_backend,
        "versions": {
            "mlflow_server": ctx.versions.get("mlflow_server"),
            "mlflow_client": _version_of("mlflow"),
            "kfp_sdk": _version_of("kfp"),
            "kfp_backend": ctx.versions.get("kfp_backend"),
        },
        "run_id": ctx.run_id,
        "namespace": ctx.namespace,
        "leftovers": list(run.leftovers),
        "clauses": [r.as_dict() for r in ordered_results(run)],
    }


def write_report(report: dict, path: str | Path) -> Path:
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        raise InputError(
            f"cannot write the report to {str(out)!r}: {exc.strerror}", hint="choose a writable --report-json path"
        ) from exc
    return out
