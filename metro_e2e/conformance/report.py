"""The machine-readable report of a conformance run (schema: ``report.schema.json`` beside this file)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from metro_e2e import __version__
from metro_e2e.conformance.catalogue import CLAUSES, catalogue_version
from metro_e2e.conformance.engine import ERROR, FAILED, SKIPPED, ClauseResult, mode_name
from metro_e2e.errors import InputError

SCHEMA = Path(__file__).with_name("report.schema.json")
KNOWN_FAILURE = "known failure (also in the baseline)"  # how the JUnit file marks a --baseline known failure


def _version_of(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


NOT_SELECTED = "not selected in this pytest session (-k, -m or node ids)"


def ordered_results(run) -> list[ClauseResult]:
    """One result per clause in catalogue order; a clause this pytest session did not select is ``skipped``
    (an interrupted session has already given every clause it did not reach an ``error``)."""
    out = []
    for clause in CLAUSES:
        result = run.results.get(clause.id)
        out.append(
            result
            or ClauseResult(
                clause.id,
                clause.level,
                clause.mode,
                SKIPPED,
                NOT_SELECTED,
            )
        )
    return out


def build_report(run) -> dict:
    ctx = run.ctx
    return _report(
        target=ctx.config.url,
        mode=mode_name(ctx.options),
        started_at=run.started_at,
        s3_backend=ctx.s3_backend,
        mlflow_server=ctx.shared.mlflow_server,
        kfp_backend=ctx.shared.kfp_backend,
        run_id=ctx.run_id,
        leftovers=list(run.leftovers),
        results=ordered_results(run),
        stopped=run.stopped,
    )


def not_run_report(*, target: str, mode: str, why: str) -> dict:
    """The report of a check that stopped before any clause ran (bad input): every clause ``error`` with ``why``."""
    from metro_e2e.conformance.context import new_run_id

    results = [ClauseResult(c.id, c.level, c.mode, ERROR, f"not run: {why}") for c in CLAUSES]
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _report(
        target=target,
        mode=mode,
        started_at=started,
        run_id=new_run_id(),
        results=results,
        stopped=f"did not start: {why}",
    )


def _report(
    *,
    target: str,
    mode: str,
    started_at: str,
    run_id: str,
    results: list[ClauseResult],
    s3_backend: str | None = None,
    mlflow_server: str | None = None,
    kfp_backend: str | None = None,
    leftovers: list[str] | None = None,
    stopped: str | None = None,
) -> dict:
    return {
        "suite_version": __version__,
        "catalogue_version": catalogue_version(),
        "target": target,
        "mode": mode,
        "started_at": started_at,
        "s3_backend": s3_backend,
        "versions": {
            "mlflow_server": mlflow_server,
            "mlflow_client": _version_of("mlflow"),
            "kfp_sdk": _version_of("kfp"),
            "kfp_backend": kfp_backend,
        },
        "run_id": run_id,
        "namespace": f"metro-e2e/{run_id}/",
        "leftovers": leftovers or [],
        "stopped": stopped,
        "baseline": None,  # check --baseline fills it in
        "clauses": [r.as_dict() for r in results],
    }


def write_atomically(path: str | Path, write: Callable[[Path], object], *, what: str, option: str) -> Path:
    """Write ``path`` by ``write(partial)`` beside it, then rename it into place: a reader (or a run interrupted while
    writing) never sees half a file, and no ``.partial`` is left behind. ``InputError`` names ``what`` and the
    ``option`` that chose the path when it cannot be written."""
    out = Path(path)
    partial = out.with_name(out.name + ".partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write(partial)
        partial.replace(out)
    except OSError as exc:
        raise InputError(
            f"cannot write {what} {str(out)!r}: {exc.strerror}", hint=f"choose a writable {option} path"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    return out


def write_report(report: dict, path: str | Path) -> Path:
    text = json.dumps(report, indent=2) + "\n"
    return write_atomically(path, lambda p: p.write_text(text), what="the report to", option="--report-json")


def complete_junit(report: dict, path: str | Path) -> Path:
    """Make the JUnit file at ``path`` name every clause of ``report``: a clause pytest never reached (an
    interrupted session, a check that stopped before it started) becomes a test case with an ``<error>``; the file
    is created when pytest wrote none."""
    from metro_e2e.conformance import suite

    out = Path(path)
    try:
        tree = ET.parse(out) if out.exists() and out.stat().st_size else None
    except ET.ParseError:
        tree = None
    if tree is None:
        root = ET.Element("testsuites")
        ET.SubElement(root, "testsuite", name="metro-e2e", errors="0", failures="0", skipped="0", tests="0")
        tree = ET.ElementTree(root)
    root = tree.getroot()
    testsuite = root if root.tag == "testsuite" else root.find("testsuite")
    known = set((report.get("baseline") or {}).get("known_failures", ()))
    for case in list(testsuite.findall("testcase")):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        failure = case.find("failure")
        if properties.get("verdict") is None:  # pytest's entry for a test an interrupt stopped: given below
            testsuite.remove(case)
        elif failure is None:
            continue
        elif properties["verdict"] == ERROR:
            failure.tag = "error"  # no verdict was reached: a JUnit error, not a failure of the platform
        elif properties.get("clause") in known:  # a known failure does not fail the run: nor does it fail the job
            failure.tag = "skipped"
            failure.set("message", f"{KNOWN_FAILURE}: {failure.get('message', '')}")
    present = {p.get("value") for p in testsuite.iter("property") if p.get("name") == "clause"}
    for clause in report["clauses"]:
        if clause["id"] in present:
            continue
        case = ET.SubElement(
            testsuite, "testcase", classname=suite.__name__, name=suite.TEST_OF[clause["id"]], time="0"
        )
        properties = ET.SubElement(case, "properties")
        for name in ("clause", "verdict", "detail", "level"):
            ET.SubElement(properties, "property", name=name, value=str(clause["id" if name == "clause" else name]))
        if clause["verdict"] == ERROR:
            ET.SubElement(case, "error", message=clause["detail"])
        elif clause["id"] in known:
            ET.SubElement(case, "skipped", message=f"{KNOWN_FAILURE}: {clause['detail']}")
        elif clause["verdict"] == FAILED:
            ET.SubElement(case, "failure", message=clause["detail"])
        elif clause["verdict"] != "passed":
            ET.SubElement(case, "skipped", message=f"{clause['verdict']}: {clause['detail']}")
    cases = testsuite.findall("testcase")
    for attribute, tag in (("errors", "error"), ("failures", "failure"), ("skipped", "skipped")):
        testsuite.set(attribute, str(sum(1 for c in cases if c.find(tag) is not None)))
    testsuite.set("tests", str(len(cases)))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tree.write(out, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise InputError(
            f"cannot write the JUnit file {str(out)!r}: {exc.strerror}", hint="choose a writable --junit-xml path"
        ) from exc
    return out
