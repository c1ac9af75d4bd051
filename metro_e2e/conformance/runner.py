"""``metro-e2e check``: run the live tier through the pytest plugin and print one verdict per clause."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from metro_e2e.conformance.catalogue import BY_ID, CLAUSES
from metro_e2e.conformance.engine import VERDICTS, ClauseResult, exit_code
from metro_e2e.errors import ConfigError, EndpointUnreachable, MetroE2EError

SUITE = "metro_e2e.conformance.suite"


@dataclass(frozen=True, kw_only=True)
class CheckRequest:
    url: str | None = None
    quick: bool = False
    skip: tuple[str, ...] = ()
    allow_promote: bool = False
    restart_serving: str | None = None
    strict: bool = False
    report_json: str | None = None
    junit_xml: str | None = None
    evidence_dir: str | None = None
    step_image: str | None = None
    latency_budget_ms: float | None = None
    restart_timeout_s: float | None = None


def validate(request: CheckRequest) -> None:
    components = {c.component for c in CLAUSES}
    for selector in request.skip:
        if selector not in BY_ID and selector not in components:
            raise ConfigError(
                f"--skip {selector} names no clause or component",
                setting="skip",
                source="command-line option --skip",
                hint=f"use a clause id ({', '.join(BY_ID)}) or a component ({', '.join(sorted(components))})",
            )
    if request.quick and (request.allow_promote or request.restart_serving):
        raise ConfigError(
            "--quick checks only GW-1, S3-1, MLF-1, KFP-1 and SRV-1, which never promote",
            setting="quick",
            source="command-line options",
            hint="drop --allow-promote/--restart-serving, or drop --quick",
        )
    if request.restart_serving and not request.allow_promote:
        raise ConfigError(
            "--restart-serving is only used by SRV-5, a promote clause",
            setting="restart_serving",
            source="command-line option --restart-serving",
            hint="add --allow-promote",
        )


def preflight(config) -> None:
    """Refuse, in one sentence, a gateway URL nothing answers at: there is nothing to check there.

    Any HTTP answer (even 404 or 403) passes: the clauses judge it.
    """
    import requests

    from metro_e2e._http import why_no_answer

    url = config.url
    try:
        requests.get(url + "/", timeout=(config.connect_timeout, config.read_timeout), allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        why = why_no_answer(exc, url, connect_timeout=config.connect_timeout, read_timeout=config.read_timeout)
        hint = "check --url / METRO_URL and that the gateway is reachable from here"
        if isinstance(exc, requests.exceptions.SSLError):
            hint = "if the gateway speaks plain HTTP, use http:// in --url / METRO_URL"
        raise EndpointUnreachable(
            f"gateway {config.mask(url)} [{config.source_of('url')}] gave no answer: {why}", url=url, hint=hint
        ) from None


def diagnosis(report: dict) -> str | None:
    """One sentence for a run whose verdicts point at the URL itself, not at one component."""
    verdicts = {c["id"]: c["verdict"] for c in report["clauses"]}
    if verdicts.get("GW-1") == "passed" and all(verdicts.get(i) == "failed" for i in ("S3-1", "MLF-1", "SRV-1")):
        return (
            f"{report['target']} answers HTTP, but neither S3, MLflow nor model serving is behind it: it does not "
            "look like a Metro gateway (check --url / METRO_URL: it must be the Istio ingress gateway's address)"
        )
    return None


def pytest_args(request: CheckRequest, report: Path, workdir: Path) -> list[str]:
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n")  # keep the caller's project configuration out of the run
    argv = [
        "-c",
        str(ini),
        "--rootdir",
        str(workdir),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:warnings",
        "-q",
        "--no-header",
        "--tb=no",
        "-rN",
        "--metro-progress",
        "--metro-report-json",
        str(report),
        "-o",
        "junit_family=xunit1",
        "--pyargs",
        SUITE,
    ]
    if request.url:
        argv += ["--metro-url", request.url]
    for selector in request.skip:
        argv += ["--metro-skip", selector]
    flags = {
        "--metro-quick": request.quick,
        "--metro-allow-promote": request.allow_promote,
        "--metro-strict": request.strict,
    }
    argv += [flag for flag, on in flags.items() if on]
    if request.latency_budget_ms is not None:
        argv += ["--metro-latency-budget-ms", str(request.latency_budget_ms)]
    if request.restart_timeout_s is not None:
        argv += ["--metro-restart-timeout-s", str(request.restart_timeout_s)]
    for option, value in (
        ("--metro-restart-serving", request.restart_serving),
        ("--junitxml", request.junit_xml),
        ("--metro-evidence-dir", request.evidence_dir),
        ("--metro-step-image", request.step_image),
    ):
        if value:
            argv += [option, value]
    return argv


def run(request: CheckRequest) -> tuple[int, dict]:
    """Run the live tier; return (exit code, report)."""
    import pytest

    validate(request)
    with tempfile.TemporaryDirectory(prefix="metro-e2e-check-") as tmp:
        report_path = Path(request.report_json) if request.report_json else Path(tmp) / "report.json"
        _writable(report_path, "--report-json")
        if request.junit_xml:
            _writable(Path(request.junit_xml), "--junit-xml")
        code = pytest.main(pytest_args(request, report_path, Path(tmp)))
        if not report_path.exists() or report_path.stat().st_size == 0:
            raise MetroE2EError(
                f"the conformance run ended before any clause ran (pytest exit {int(code)})",
                hint="see the output above; METRO_DEBUG=1 shows more",
            )
        report = json.loads(report_path.read_text())
    results = [ClauseResult(**c) for c in report["clauses"]]
    return exit_code(results, strict=request.strict), report


def _writable(path: Path, option: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot write {option} {str(path)!r}: {exc.strerror}",
            setting=option.lstrip("-"),
            source=f"command-line option {option}",
            hint="choose a writable path",
        ) from None


def table(report: dict) -> str:
    rows = [f"{'clause':7} {'verdict':8} {'seconds':>7}  detail", "-" * 100]
    for c in report["clauses"]:
        detail = c["detail"] if len(c["detail"]) <= 78 else c["detail"][:75] + "..."
        rows.append(f"{c['id']:7} {c['verdict']:8} {c['duration_s']:7.1f}  {detail}")
    counts = {v: sum(1 for c in report["clauses"] if c["verdict"] == v) for v in VERDICTS}
    rows.append("-" * 100)
    rows.append(", ".join(f"{n} {v}" for v, n in counts.items() if n))
    backend = f", S3 backend {report['s3_backend']}" if report.get("s3_backend") else ""
    versions = report["versions"]
    rows.append(
        f"target {report['target']} ({report['mode']} mode{backend}); MLflow server {versions['mlflow_server']}, "
        f"client {versions['mlflow_client']}; namespace {report['namespace']}"
    )
    rows.append(
        "leftovers: " + ("; ".join(report["leftovers"]) if report["leftovers"] else "none (namespace cleaned up)")
    )
    return "\n".join(rows)
