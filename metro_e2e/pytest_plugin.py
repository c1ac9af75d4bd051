"""pytest plugin for metro-e2e (registered through the ``pytest11`` entry point).

A thin layer over the library: one option group ``metro`` with matching
``metro_*`` ini keys; the layer markers ``unit`` / ``integration`` / ``live``
applied from each test's folder; the ``metro_config`` fixture; and, for the
live tier, the ``clause("ID")`` marker and the verdict engine: tests run in
catalogue order, a failed dependency blocks its dependents, options decide
what is skipped, and clause ids, verdicts and details ride in
``item.user_properties`` (so they survive pytest-xdist and appear in JUnit).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

LAYERS = ("unit", "integration", "live")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("metro", "metro-e2e: the Metro platform under test")
    group.addoption(
        "--metro-url",
        dest="metro_url",
        default=None,
        help="gateway URL of the platform under test (env METRO_URL, ini metro_url)",
    )
    group.addoption(
        "--metro-quick",
        action="store_true",
        default=False,
        help="only GW-1, S3-1, MLF-1, KFP-1, SRV-1: is the install alive",
    )
    group.addoption(
        "--metro-skip",
        action="append",
        default=[],
        metavar="ID|PREFIX",
        help="mark these clauses (e.g. SRV-6) or components (e.g. KFP) skipped",
    )
    group.addoption(
        "--metro-allow-promote",
        action="store_true",
        default=False,
        help="run the promote clauses (they change what the platform serves)",
    )
    group.addoption(
        "--metro-restart-serving", default=None, metavar="CMD", help="command that restarts serving, for SRV-5"
    )
    group.addoption("--metro-strict", action="store_true", default=False, help="advisory clauses fail instead of warn")
    group.addoption("--metro-report-json", default=None, metavar="PATH", help="write the JSON report here")
    group.addoption(
        "--metro-evidence-dir", default=None, metavar="DIR", help="keep request/response excerpts of the checks here"
    )
    group.addoption("--metro-latency-budget-ms", type=float, default=None, help="SRV-6 budget (default 250)")
    group.addoption(
        "--metro-step-image", default=None, metavar="IMAGE", help="step image for the KFP clauses (see the Dockerfile)"
    )
    group.addoption("--metro-progress", action="store_true", default=False, help="one line per clause as it ends")
    group.addoption(
        "--metro-restart-timeout-s",
        type=float,
        default=None,
        help="how long SRV-5 waits for the restarted server (default 120)",
    )
    parser.addini("metro_url", "gateway URL of the platform under test", default="")


def pytest_configure(config: pytest.Config) -> None:
    for layer, text in (
        ("unit", "no network: moto-mocked S3, sqlite MLflow"),
        ("integration", "real servers on loopback (the local Metro stack)"),
        ("live", "the contract clauses against a gateway URL"),
    ):
        config.addinivalue_line("markers", f"{layer}: {text} (applied from the test's folder)")
    config.addinivalue_line("markers", "clause(id): the CONTRACT.md clause this test proves (exactly one per clause)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).parts
        for layer in LAYERS:
            if "tests" in parts and layer in parts:
                item.add_marker(getattr(pytest.mark, layer))
    claimed = [i for i in items if i.get_closest_marker("clause")]
    if not claimed:
        return
    if _target_given(config):  # a malformed setting is one usage error, not an error per clause
        from metro_e2e.config import load_config
        from metro_e2e.errors import ConfigError

        try:
            load_config(
                cli={"url": config.getoption("metro_url")}, environ=os.environ, ini={"url": config.getini("metro_url")}
            )
        except ConfigError as exc:
            raise pytest.UsageError(f"metro-e2e: {exc}") from None
    from metro_e2e.conformance.catalogue import BY_ID, CLAUSES

    seen: dict[str, str] = {}
    for item in claimed:
        marker = item.get_closest_marker("clause")
        if len(marker.args) != 1 or marker.args[0] not in BY_ID:
            raise pytest.UsageError(
                f"{item.nodeid}: clause marker names unknown clause {marker.args!r}; known: {', '.join(BY_ID)}"
            )
        clause_id = marker.args[0]
        if clause_id in seen:
            raise pytest.UsageError(f"clause {clause_id} is claimed twice: {seen[clause_id]} and {item.nodeid}")
        seen[clause_id] = item.nodeid
        item.user_properties.append(("clause", clause_id))
    missing = [c.id for c in CLAUSES if c.id not in seen]
    if missing:
        raise pytest.UsageError(f"clauses without a test: {', '.join(missing)}")
    order = {c.id: n for n, c in enumerate(CLAUSES)}
    others = [i for i in items if not i.get_closest_marker("clause")]
    items[:] = others + sorted(claimed, key=lambda i: order[i.get_closest_marker("clause").args[0]])


@pytest.fixture(scope="session")
def metro_config(pytestconfig: pytest.Config):
    """The platform settings for this session: ``--metro-url`` > ``METRO_*`` env > ini > defaults."""
    from metro_e2e.config import load_config

    return load_config(
        cli={"url": pytestconfig.getoption("metro_url")},
        environ=os.environ,
        ini={"url": pytestconfig.getini("metro_url")},
    )


class MetroRun:
    """The live tier's session state: the run context, the verdicts so far, the report at the end."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.results: dict = {}
        self.details: dict[str, str] = {}
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.leftovers: list[str] = []

    def check(self, clause_id: str) -> None:
        """Run the check of ``clause_id``; its detail becomes the verdict's detail."""
        from metro_e2e.conformance.checks import CHECKS

        self.details[clause_id] = CHECKS[clause_id](self.ctx)


def _options_from(config: pytest.Config):
    from metro_e2e.conformance.context import Options

    budget = config.getoption("metro_latency_budget_ms")
    evidence = config.getoption("metro_evidence_dir")
    return Options(
        allow_promote=config.getoption("metro_allow_promote"),
        restart_serving=config.getoption("metro_restart_serving"),
        strict=config.getoption("metro_strict"),
        quick=config.getoption("metro_quick"),
        skip=tuple(config.getoption("metro_skip")),
        **({"latency_budget_ms": budget} if budget else {}),
        evidence_dir=Path(evidence) if evidence else None,
        step_image=config.getoption("metro_step_image"),
        **({"restart_timeout_s": restart} if (restart := config.getoption("metro_restart_timeout_s")) else {}),
    )


def _target_given(config: pytest.Config) -> bool:
    return bool(config.getoption("metro_url") or os.environ.get("METRO_URL") or config.getini("metro_url"))


@pytest.fixture(scope="session")
def metro_run(request: pytest.FixtureRequest, metro_config):
    """The live tier's run: namespace, options, verdicts; cleans up its namespace at the end.

    With no target URL (no ``--metro-url``, ``METRO_URL`` or ini) it starts the local stack and checks that:
    KFP clauses are skipped (KFP does not run locally) and SRV-5 restarts the stack's model server.
    """
    from metro_e2e.conformance.context import RunContext, cleanup

    options = _options_from(request.config)
    stack = None
    if _target_given(request.config):
        ctx = RunContext(config=metro_config, options=options)
    else:
        stack = _start_local_stack(request.config)
        options.skip = (*options.skip, "KFP")
        options.skip_reasons["KFP"] = "KFP does not run in the local stack"
        if options.restart_serving is None:
            options.restart_serving = stack.restart_serving
        ctx = RunContext(config=stack.config(), options=options, s3_backend=stack.s3_choice.backend)
    run = MetroRun(ctx)
    request.config._metro_run = run
    try:
        yield run
    finally:
        try:
            run.leftovers = cleanup(ctx)
        finally:
            if stack is not None:
                stack.stop()
                _keep_stack_logs(stack, ctx)


def _keep_stack_logs(stack, ctx) -> None:
    """Against the local stack, ``--evidence-dir`` also gets every service's log (secrets masked)."""
    if not ctx.options.evidence_dir:
        return
    target = Path(ctx.options.evidence_dir) / "stack-logs"
    target.mkdir(parents=True, exist_ok=True)
    for log in sorted(stack.log_dir.glob("*.log")):
        (target / log.name).write_text(ctx.config.mask(log.read_text(errors="replace")))


def _start_local_stack(config: pytest.Config):
    from metro_e2e.errors import StackError
    from metro_e2e.stack import LocalStack, StackOptions
    from metro_e2e.stack.gateway import NGINX_INSTALL_HINT, nginx_binary

    try:
        nginx_binary()
    except StackError:
        if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
            pytest.skip(f"no --metro-url given and the local stack needs nginx ({NGINX_INSTALL_HINT})")
        raise
    print("\nmetro-e2e: no --metro-url: starting the local Metro stack ...", flush=True)
    return LocalStack(StackOptions(seed_model=True)).start()


def _run_of(item: pytest.Item) -> MetroRun | None:
    return getattr(item.config, "_metro_run", None)


@pytest.fixture(autouse=True)
def _metro_clause_gate(request: pytest.FixtureRequest) -> None:
    """Before a clause's test: skip it (with the enabling option) or block it (a dependency failed)."""
    marker = request.node.get_closest_marker("clause")
    if marker is None:
        return
    run = request.getfixturevalue("metro_run")
    from metro_e2e.conformance.catalogue import BY_ID
    from metro_e2e.conformance.engine import ClauseResult, gate

    clause = BY_ID[marker.args[0]]
    decision = gate(clause, run.ctx.options, run.results)
    if decision:
        verdict, reason = decision
        run.results[clause.id] = ClauseResult(clause.id, clause.level, clause.mode, verdict, reason)
        request.node.user_properties += [("verdict", verdict), ("detail", reason), ("level", clause.level)]
        pytest.skip(f"{verdict}: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    marker = item.get_closest_marker("clause")
    run = _run_of(item)
    if marker is None or run is None or call.when != "call":
        return
    from metro_e2e.conformance.catalogue import BY_ID
    from metro_e2e.conformance.engine import WARNED, ClauseResult, verdict

    report = outcome.get_result()
    clause = BY_ID[marker.args[0]]
    passed = report.passed
    if passed:
        detail = run.details.get(clause.id, "passed")
    else:
        text = str(call.excinfo.value) if call.excinfo else report.longreprtext
        detail = run.ctx.config.mask(text.strip().splitlines()[0] if text.strip() else "failed")
    result = ClauseResult(
        clause.id,
        clause.level,
        clause.mode,
        verdict(clause, passed, strict=run.ctx.options.strict),
        detail,
        round(call.duration, 2),
    )
    run.results[clause.id] = result
    item.user_properties += [
        ("verdict", result.verdict),
        ("detail", result.detail),
        ("level", clause.level),
        ("duration_s", str(result.duration_s)),
    ]
    report.user_properties = list(item.user_properties)  # the progress line reads the call report
    if result.verdict == WARNED:  # advisory: reported, not a failing test unless --metro-strict
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0, f"warned: {detail}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note blocked core clauses (they fail the run, also under xdist); with ``--metro-progress`` print a line."""
    props = dict(report.user_properties)
    if "clause" not in props or "verdict" not in props or report.when not in ("setup", "call"):
        return
    if report.when == "setup" and report.outcome != "skipped":
        return
    if props["verdict"] == "blocked" and props.get("level") == "core":
        _blocked.append(props["clause"])
    reporter = _reporter
    if reporter is not None:
        reporter.write_line(f"  {props['clause']:6} {props['verdict']:8} {props.get('detail', '')[:100]}")


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """With ``--metro-progress`` a clause's line replaces pytest's progress letter."""
    if not config.getoption("metro_progress", False) or "clause" not in dict(report.user_properties):
        return None
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        return report.outcome, "", ""
    return "", "", ""


_reporter = None
_blocked: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    global _reporter
    if session.config.getoption("metro_progress", False):
        _reporter = session.config.pluginmanager.get_plugin("terminalreporter")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _blocked and session.exitstatus == pytest.ExitCode.OK:  # the controller sees every worker's reports
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a blocked core clause fails the run, as in check
    run = getattr(session.config, "_metro_run", None)
    if run is None or not run.results:
        return
    path = session.config.getoption("metro_report_json", None)
    if not path:
        return
    from metro_e2e.conformance.report import build_report, write_report

    write_report(build_report(run), path)
