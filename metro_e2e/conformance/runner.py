"""``metro-e2e check``: run the live tier through the pytest plugin and print one verdict per clause."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from metro_e2e.conformance import compare
from metro_e2e.conformance.catalogue import BEHIND_GATEWAY, BY_ID, CLAUSES, GATEWAY, QUICK
from metro_e2e.conformance.engine import ERROR, FAILED, SKIPPED, VERDICTS, ClauseResult, exit_code, mode_name
from metro_e2e.conformance.options import Options, Preset
from metro_e2e.errors import ConfigError, Interrupted, MetroE2EError

SUITE = "metro_e2e.conformance.suite"


def validate(request: Options):
    """Refuse conflicting options, outputs that cannot be written or share a path, and a baseline that cannot be
    used (``ConfigError``) before anything runs. Returns the ``--baseline`` run (``bundle.Loaded``) or None."""
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
            f"--quick checks only {', '.join(QUICK[:-1])} and {QUICK[-1]}, which never promote",
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
    for folder, option in ((request.results_dir, "--results-dir"), (request.evidence_dir, "--evidence-dir")):
        if not folder:
            continue
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"{option} {folder!r} cannot be made: {exc.strerror}",
                setting=option.lstrip("-").replace("-", "_"),
                source=f"command-line option {option}",
                hint="give a folder this user can write",
            ) from None
    outputs = {"--report-json": request.report_json, "--junit-xml": request.junit_xml}
    outputs |= {"--html": request.html, "--bundle": request.bundle}
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if not path:
            continue
        where = Path(path).resolve()
        if where in seen:
            raise ConfigError(
                f"{seen[where]} and {option} are the same file {path!r}: one would overwrite the other",
                setting=option.lstrip("-").replace("-", "_"),
                source=f"command-line options {seen[where]} and {option}",
                hint="give each output a path of its own",
            )
        seen[where] = option
        _writable(Path(path), option)
    return read_baseline(request)


def diagnosis(report: dict) -> str | None:
    """One sentence for a run whose verdicts point at the URL itself, not at one component."""
    verdicts = {c["id"]: c["verdict"] for c in report["clauses"]}
    if verdicts.get(GATEWAY) == "passed" and all(verdicts.get(i) == "failed" for i in BEHIND_GATEWAY):
        return (
            f"{report['target']} answers HTTP, but neither S3, MLflow nor model serving is behind it: it does not "
            "look like a Metro gateway (check --url / METRO_URL: it must be the Istio ingress gateway's address)"
        )
    return None


def pytest_args(request: Options, workdir: Path) -> list[str]:
    """pytest's own arguments for the check's session (the check's options go to it as a ``Preset`` object)."""
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n")  # keep the caller's project configuration out of the run
    argv = [
        "-c",
        str(ini),
        "--rootdir",
        str(workdir),
        "--noconftest",  # a conftest.py above an editable install (the project's own tests) is not the check's
        # no plugin but the suite's own, by its entry-point name (PYTEST_PLUGINS=metro_e2e then loads nothing twice):
        # others installed beside it (hypothesis, coverage...) cost seconds of start-up and are not the check's
        "--disable-plugin-autoload",
        "-p",
        "metro_e2e",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:warnings",
        "-p",
        "no:xdist",  # one session in this process even if PYTEST_ADDOPTS loads xdist: workers would not get options
        "-q",
        "--no-header",
        "--tb=no",
        "-rN",
        "-o",
        "junit_family=xunit1",
        "--pyargs",
        SUITE,
    ]
    return argv + (["--junitxml", request.junit_xml] if request.junit_xml else [])


@dataclass(frozen=True)
class Outcome:
    """How a check ended: its exit code, the report, and why the session stopped early (None if it did not)."""

    exit_code: int
    report: dict
    stopped: str | None = None


class _SessionProbe:
    """Notes that pytest saw an interrupt (SIGINT, or SIGTERM raised the same way), whatever pytest does after it
    (it can crash showing one; a collection error or ``pytest.exit`` is not one), and a failure outside the clauses'
    own checks (a teardown, a collection error, a test that is no clause's)."""

    interrupted = False

    outside = False  # something outside the clauses' own checks failed: a teardown, a test that is no clause's

    @pytest.hookimpl(tryfirst=True)  # before the terminal reporter, which is what can crash
    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.interrupted = self.interrupted or type(excinfo.value) is KeyboardInterrupt

    def pytest_runtest_logreport(self, report) -> None:
        clause = any(name == "clause" for name, _ in report.user_properties)
        self.outside = self.outside or (report.failed and (report.when == "teardown" or not clause))

    def pytest_collectreport(self, report) -> None:
        self.outside = self.outside or report.failed


def run(request: Options, *, mask: Callable[[str], str] = str) -> Outcome:
    """Run the live tier; the reports are written and complete however the session ends (``mask`` hides secrets in
    what pytest's own crash says and in everything the bundle holds)."""
    from metro_e2e.conformance.report import write_report

    baseline = validate(request)
    probe = _SessionProbe()
    with tempfile.TemporaryDirectory(prefix="metro-e2e-check-") as tmp:
        staged = _staged(request, Path(tmp))
        report_path = Path(staged.report_json)
        for stale in (report_path, Path(staged.junit_xml) if staged.junit_xml else None):
            if stale is not None:
                stale.unlink(missing_ok=True)  # a report left by an earlier run must never be read as this one's
        crash = ""
        try:
            preset = Preset(dataclasses.replace(staged, progress=True))
            code = pytest.main(pytest_args(staged, Path(tmp)), plugins=[probe, preset])
        except KeyboardInterrupt:  # a second signal while the session cleaned up or wrote its reports
            code = pytest.ExitCode.INTERRUPTED
        except Exception as exc:  # noqa: BLE001 - pytest itself crashed; what its session wrote still counts
            code, crash = pytest.ExitCode.INTERNAL_ERROR, mask(f" ({type(exc).__name__}: {exc})")
        if probe.interrupted:  # an interrupt outranks whatever pytest did after it
            code = pytest.ExitCode.INTERRUPTED
        elif code == pytest.ExitCode.INTERRUPTED and probe.outside:  # pytest's word for a collection error
            code = pytest.ExitCode.TESTS_FAILED
        unwritten = None
        try:
            report = _read(report_path)
            if report is None and code == pytest.ExitCode.INTERRUPTED:
                raise Interrupted("the run was interrupted before it wrote its report")
            if report is None:
                raise MetroE2EError(
                    f"the conformance run ended before any clause ran (pytest exit {int(code)}){crash}",
                    hint="see the output above; METRO_DEBUG=1 shows more",
                )
            rewrite = _deselected(report)
            verdict_code = exit_code([ClauseResult(**c) for c in report["clauses"]], strict=request.strict)
            if baseline is not None:
                decision = compare.gate(
                    report,
                    baseline.report,
                    strict=request.strict,
                    ratio=request.slower_ratio,
                    floor_s=request.slower_floor_s,
                )
                report["baseline"] = decision.summary(baseline.source)
                verdict_code, rewrite = decision.exit_code, True
            if rewrite and request.report_json:
                write_report(report, request.report_json)
            try:
                publish(staged, report, mask=mask)
            except MetroE2EError as exc:  # the verdicts stand and their reports are written: say what was not
                unwritten = f"could not write all of its results: {exc}"
        finally:  # the evidence is the user's however this ends (the staged folder goes with the temp folder)
            try:
                _keep_evidence(staged, request)
            except OSError as exc:
                unwritten = unwritten or f"could not copy its evidence to {request.evidence_dir!r}: {exc}"
    if code == pytest.ExitCode.INTERRUPTED:
        return Outcome(Interrupted.exit_code, report, "was interrupted")
    if unwritten:
        return Outcome(max(1, verdict_code), report, unwritten)
    results = [ClauseResult(**c) for c in report["clauses"]]
    if code == pytest.ExitCode.INTERNAL_ERROR:
        return Outcome(max(1, verdict_code), report, f"stopped with a pytest internal error{crash}")
    if code == pytest.ExitCode.USAGE_ERROR:
        return Outcome(ConfigError.exit_code, report, "stopped with a usage error")
    if report.get("stopped"):  # the session ended before a clause it was to run, whatever pytest's exit says
        return Outcome(max(1, verdict_code), report, report["stopped"])
    explained = any(r.verdict in (FAILED, ERROR) for r in results)  # a clause's own failure (advisory ones too)
    # something outside the clauses broke (a teardown): seen, or the only way pytest's failure can be explained
    if probe.outside or (code == pytest.ExitCode.TESTS_FAILED and not explained):
        return Outcome(1, report, "had an error outside the clauses (see the output above)")
    return Outcome(verdict_code, report)


def read_baseline(request: Options):
    """The ``--baseline`` run (``bundle.Loaded``), or None; a baseline that cannot be read or cannot excuse anything
    is bad input (``ConfigError``), found before anything runs."""
    if not request.baseline:
        return None
    from metro_e2e.conformance import bundle

    try:
        loaded = bundle.load(request.baseline)
    except MetroE2EError as exc:
        raise ConfigError(
            f"--baseline: {exc.message}",
            setting="baseline",
            source="command-line option --baseline",
            hint=exc.hint or "give a bundle or JSON report of an earlier run",
        ) from None
    compare.usable_baseline(loaded.report, request.baseline)
    return loaded


def _staged(request: Options, folder: Path) -> Options:
    """``request`` with a path in ``folder`` for each file the bundle or the HTML page needs and was not asked for.
    With either, the evidence goes to a new folder in ``folder`` (``--evidence-dir`` gets a copy at the end,
    ``_keep_evidence``): one the user gives may hold an earlier run's, which must not enter this run's bundle."""
    wanted: dict[str, str | None] = {"report_json": request.report_json or str(folder / "report.json")}
    if request.bundle or request.html:
        wanted["evidence_dir"] = str(folder / "evidence")
    if request.bundle:
        wanted["junit_xml"] = request.junit_xml or str(folder / "junit.xml")
        wanted["settings_json"] = str(folder / "config.json")
    return dataclasses.replace(request, **wanted)


def publish(staged: Options, report: dict, *, mask: Callable[[str], str] = str) -> list[str]:
    """Complete the JUnit file and write the HTML page and the bundle that ``staged`` asks for; their paths."""
    from metro_e2e.conformance import bundle, html
    from metro_e2e.conformance.report import complete_junit

    written = []
    if staged.junit_xml:
        complete_junit(report, staged.junit_xml)
    if not (staged.html or staged.bundle):
        return written
    evidence = bundle.folder_files(staged.evidence_dir, bundle.EVIDENCE)
    page = html.page(report, bundle.evidence_records(evidence))
    if staged.html:
        written.append(str(html.write(mask(page), staged.html)))
    if staged.bundle:
        files = {
            "report.json": (json.dumps(report, indent=2) + "\n").encode(),
            "junit.xml": Path(staged.junit_xml).read_bytes(),
            "report.html": page.encode(),
            "config.json": _settings(staged),
            "versions.json": (json.dumps(versions(report), indent=2) + "\n").encode(),
        }
        for name, data in evidence.items():  # the local stack's logs, kept under evidence/, are a folder of their own
            files[name.replace(f"{bundle.EVIDENCE}stack-logs/", "stack-logs/", 1)] = data
        written.append(str(bundle.write(staged.bundle, files, report=report, mask=mask)))
    return written


def _keep_evidence(staged: Options, request: Options) -> None:
    """Copy this run's evidence from the staged folder to the ``--evidence-dir`` the user gave (files of the same
    name are replaced: they are an earlier run's). ``OSError`` (``shutil.Error`` is one) if it cannot."""
    if not request.evidence_dir or staged.evidence_dir == request.evidence_dir:
        return
    import shutil

    if Path(staged.evidence_dir).is_dir():
        shutil.copytree(staged.evidence_dir, request.evidence_dir, dirs_exist_ok=True)


def _settings(staged: Options) -> bytes:
    path = Path(staged.settings_json) if staged.settings_json else None
    if path is not None and path.is_file():
        return path.read_bytes()
    return b'{"settings": null, "why": "the run ended before its settings were resolved"}\n'


def versions(report: dict) -> dict:
    """What was found: the platform's versions (the report's) and this environment's."""
    from metro_e2e.pipeline import image

    return {"platform": {**report["versions"], "s3_backend": report["s3_backend"]}, "this_environment": image.record()}


def _deselected(report: dict) -> bool:
    """``check`` runs every clause its options ask for: one pytest's own selection left out (``-k`` or ``--deselect``
    in PYTEST_ADDOPTS) has no verdict, so it is ``error`` and the session ended early. True if any was."""
    from metro_e2e.conformance.report import NOT_SELECTED

    left_out = [c for c in report["clauses"] if c["verdict"] == SKIPPED and c["detail"] == NOT_SELECTED]
    for clause in left_out:
        clause["verdict"] = ERROR
        clause["detail"] = (
            "not run: pytest's own selection left it out (-k, -m or --deselect, in PYTEST_ADDOPTS?): check runs "
            "every clause; leave one out with --skip"
        )
    if left_out:
        report["stopped"] = report.get("stopped") or "left clauses out through pytest's own selection"
    return bool(left_out)


def _read(path: Path) -> dict | None:
    """The report the session wrote, or None (none written; written atomically, so never half a report)."""
    try:
        return json.loads(path.read_text()) if path.exists() and path.stat().st_size else None
    except ValueError:
        return None


def write_not_run(
    request: Options, target: str, error: MetroE2EError, *, mask: Callable[[str], str] = str
) -> list[str]:
    """A check that stops before it starts (bad input) still leaves the reports a CI job publishes: every clause
    ``error`` with the reason, and the HTML page and the bundle if asked for (no evidence: nothing ran). Returns the
    paths written; a path that cannot be written is left out."""
    from metro_e2e.conformance.report import not_run_report, write_report

    report = not_run_report(target=target, mode=mode_name(request), why=str(error))
    written = []
    with tempfile.TemporaryDirectory(prefix="metro-e2e-check-") as tmp:
        none = dataclasses.replace(request, junit_xml=None, html=None, bundle=None, evidence_dir=None)
        each = {  # one at a time: one that cannot be written may be the bad input itself (--report-json /proc/...)
            "report_json": lambda: write_report(report, request.report_json),
            "junit_xml": lambda: publish(dataclasses.replace(none, junit_xml=request.junit_xml), report, mask=mask),
            "html": lambda: publish(dataclasses.replace(none, html=request.html), report, mask=mask),
            "bundle": lambda: publish(
                dataclasses.replace(none, bundle=request.bundle, junit_xml=f"{tmp}/junit.xml"), report, mask=mask
            ),
        }
        for name, write in each.items():
            if not getattr(request, name):
                continue
            try:
                write()
            except MetroE2EError:
                continue
            written.append(getattr(request, name))
    return written


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


def baseline_lines(report: dict) -> list[str]:
    """What ``--baseline`` decided, for under the table (nothing without one)."""
    baseline = report.get("baseline")
    if not baseline:
        return []
    by_id = {c["id"]: c for c in report["clauses"]}
    out = [
        f"baseline {baseline['source']} (run {baseline['run_id']}, {baseline['started_at']}): "
        f"{len(baseline['known_failures'])} known failure(s), {len(baseline['regressions'])} regression(s)"
    ]
    out += [f"  known failure {i}: {by_id[i]['verdict']}, as in the baseline" for i in baseline["known_failures"]]
    out += [f"  regression    {i}: {by_id[i]['verdict']}: {by_id[i]['detail'][:90]}" for i in baseline["regressions"]]
    return out


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
