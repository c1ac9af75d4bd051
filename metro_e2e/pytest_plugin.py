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

import contextlib
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
    config.pluginmanager.register(_Session(config), f"metro-e2e-session-{id(config)}")


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
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.leftovers: list[str] = []
        self.running: str | None = None  # the clause whose check is under way (named if the session is interrupted)
        self.stopped: str | None = None  # why clauses did not run: the session was interrupted or failed

    def check(self, clause_id: str) -> None:
        """Run the check of ``clause_id`` (the engine gives the verdict); fail or skip the test to match it."""
        from metro_e2e.conformance.catalogue import BY_ID
        from metro_e2e.conformance.engine import PASSED, WARNED, execute

        self.running = clause_id
        result = execute(BY_ID[clause_id], self.ctx)
        self.running = None
        self.results[clause_id] = result
        if result.verdict == WARNED:  # advisory: reported, not a failing test unless --metro-strict
            pytest.skip(f"warned: {result.detail}")
        if result.verdict != PASSED:
            pytest.fail(f"{result.verdict}: {result.detail}", pytrace=False)

    def complete(self) -> None:
        """Give every clause the stopped session did not reach a verdict: ``error`` for one that would have run,
        ``skipped`` (with the option that enables it) for one the options leave out."""
        if not self.stopped:
            return
        from metro_e2e.conformance.catalogue import CLAUSES
        from metro_e2e.conformance.engine import ERROR, ClauseResult, requested

        for clause in CLAUSES:
            if clause.id in self.results:
                continue
            if (left_out := requested(clause, self.ctx.options)) is not None:
                self.results[clause.id] = ClauseResult(clause.id, clause.level, clause.mode, *left_out)
                continue
            detail = (
                f"not finished: the session {self.stopped} while this clause ran"
                if clause.id == self.running
                else f"not run: the session {self.stopped} before it reached this clause"
            )
            self.results[clause.id] = ClauseResult(clause.id, clause.level, clause.mode, ERROR, detail)


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
    KFP clauses are skipped (KFP does not run locally) and SRV-5 restarts the stack's model server. Every client
    runs under the suite's timeout and retry policy; SIGTERM interrupts the run like Ctrl-C (cleanup and the
    reports still happen).
    """
    from metro_e2e._console import sigterm_as_interrupt
    from metro_e2e.conformance.context import RunContext, cleanup, client_policy

    options = _options_from(request.config)
    run = MetroRun(RunContext(config=metro_config, options=options))
    request.config.stash[_RUN] = run  # before anything can fail: the report is written whatever happens
    with contextlib.ExitStack() as scope:
        scope.enter_context(sigterm_as_interrupt())
        if not _target_given(request.config):
            stack = _start_local_stack(request.config)
            scope.callback(_stop_local_stack, stack, run)
            options.skip = (*options.skip, "KFP")
            options.skip_reasons["KFP"] = "KFP does not run in the local stack"
            if options.restart_serving is None:
                options.restart_serving = stack.restart_serving
            run.ctx = RunContext(config=stack.config(), options=options, s3_backend=stack.s3_choice.backend)
        scope.enter_context(client_policy(run.ctx.config))
        try:
            yield run
        finally:
            # until cleanup says otherwise (an interrupt or a crash inside it), everything may still be there
            run.leftovers = [f"cleanup did not finish: {_everything_created(run.ctx)} may still exist"]
            try:
                run.leftovers = cleanup(run.ctx)
            except Exception as exc:  # noqa: BLE001 - reported as leftovers; the clauses' verdicts stand
                why = run.ctx.config.mask(f"{type(exc).__name__}: {exc}")
                run.leftovers = [f"cleanup failed ({why}): {_everything_created(run.ctx)} may still exist"]


def _everything_created(ctx) -> str:
    text = f"s3://*/{ctx.namespace}, MLflow experiments and models {ctx.name}*, KFP pipelines {ctx.name}*"
    if ctx.results.get("previous_latest") and ctx.results.get("promoting"):
        backup = ctx.results["previous_latest"][0]
        text += (
            f"; latest/ may still hold the check's model: what it held before is at "
            f"s3://{ctx.config.models_bucket}/{backup} (do not delete it before putting it back)"
        )
    return text


def _stop_local_stack(stack, run: MetroRun) -> None:
    stack.stop()
    _keep_stack_logs(stack, run.ctx)


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


def _run_of(config: pytest.Config) -> MetroRun | None:
    return config.stash.get(_RUN, None)


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
        pytest.skip(f"{verdict}: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Clause ids, verdicts and details ride on the report (JUnit properties; pytest-xdist carries them)."""
    outcome = yield
    marker = item.get_closest_marker("clause")
    run = _run_of(item.config)
    if marker is None or run is None or call.when == "teardown":
        return
    from metro_e2e.conformance.catalogue import BY_ID
    from metro_e2e.conformance.engine import ERROR, SKIPPED, ClauseResult

    report = outcome.get_result()
    clause = BY_ID[marker.args[0]]
    result = run.results.get(clause.id)
    if result is None and report.failed:  # the test could not run its check: a fixture or the plugin failed
        text = str(call.excinfo.value) if call.excinfo else report.longreprtext
        first = text.strip().splitlines()[0] if text.strip() else "failed"
        detail = f"not run: its {call.when} failed: {first}"
        result = ClauseResult(clause.id, clause.level, clause.mode, ERROR, run.ctx.config.mask(detail))
        run.results[clause.id] = result
    elif result is None and report.skipped:
        if isinstance(report.longrepr, tuple) and not hasattr(report, "wasxfail"):  # a skip mark, a fixture's skip
            verdict, detail = SKIPPED, report.longrepr[2].removeprefix("Skipped: ")
        else:  # an xfail mark turned the failure of its setup into a skip: the check never ran
            verdict, detail = ERROR, f"not run: an xfail mark stopped its {call.when}"
        result = ClauseResult(clause.id, clause.level, clause.mode, verdict, run.ctx.config.mask(detail))
        run.results[clause.id] = result
    if result is None or (call.when == "setup" and report.passed):
        return
    properties = [("clause", clause.id), ("verdict", result.verdict), ("detail", result.detail)]
    properties += [("level", clause.level), ("duration_s", str(result.duration_s))]
    if result.budget_s is not None:
        properties.append(("budget_s", str(result.budget_s)))
    item.user_properties[:] = [p for p in item.user_properties if p[0] == "clause"] + properties[1:]
    report.user_properties = list(item.user_properties)  # the progress line reads the report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """With ``--metro-progress`` a clause's line replaces pytest's progress letter."""
    if not config.getoption("metro_progress", False) or "clause" not in dict(report.user_properties):
        return None
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        return report.outcome, "", ""
    return "", "", ""


_RUN = pytest.StashKey[MetroRun]()


def _has_line(entry) -> bool:
    try:
        return entry.lineno is not None
    except TypeError:  # the frame's instruction has no line number
        return False


class _Session:
    """One pytest session's hooks and state (registered per config, so two sessions in one process stay apart)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.blocked: list[str] = []
        self.reporter = None
        self.collected: list[str] = []

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.config.getoption("metro_progress", False):
            self.reporter = self.config.pluginmanager.get_plugin("terminalreporter")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The clauses this session is to run, after deselection: one of them without a verdict at the end means
        the session did not complete. Not known under xdist (the controller collects nothing; a worker runs only
        what it is sent)."""
        if hasattr(self.config, "workerinput"):
            return
        self.collected = [m.args[0] for i in session.items if (m := i.get_closest_marker("clause")) and m.args]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note blocked core clauses (they fail the run, also under xdist); with ``--metro-progress`` print a line."""
        props = dict(report.user_properties)
        if "clause" not in props or "verdict" not in props or report.when not in ("setup", "call"):
            return
        if report.when == "setup" and report.passed:
            return
        if props["verdict"] == "blocked" and props.get("level") == "core":
            self.blocked.append(props["clause"])
        if self.reporter is not None:
            self.reporter.write_line(f"  {props['clause']:6} {props['verdict']:8} {props.get('detail', '')[:100]}")

    @pytest.hookimpl(wrapper=True)
    def pytest_keyboard_interrupt(self, excinfo):
        """Python 3.11 can leave a frame of an interrupted traceback with no line number, and pytest's terminal
        reporter crashes formatting it: such frames are left out of what it shows, so the session still ends as
        interrupted (exit 130 from ``check``), not as a crash of pytest itself."""
        excinfo.traceback = excinfo.traceback.filter(_has_line)
        try:
            return (yield)
        except Exception:  # noqa: BLE001 - a chained exception's frames are not filtered: show the interrupt alone
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None and getattr(reporter, "_keyboardinterrupt_memo", False) is None:
                with contextlib.suppress(Exception):  # else pytest's summary fails; check still exits 130
                    reporter._keyboardinterrupt_memo = excinfo.getrepr(chain=False)
            return None

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session):
        """The report is written after pytest's own sessionfinish has torn the session fixtures down (cleanup), and
        also when a second signal interrupts that teardown (then the run was interrupted)."""
        interrupted = False
        try:
            return (yield)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            self._finish(session, interrupted)

    def _finish(self, session: pytest.Session, interrupted: bool) -> None:
        if self.blocked and session.exitstatus == pytest.ExitCode.OK:  # the controller sees every worker's reports
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a blocked core clause fails the run, as in check
        run = _run_of(self.config)
        if run is None:
            return
        stopped = {
            pytest.ExitCode.INTERRUPTED: "was interrupted",
            pytest.ExitCode.INTERNAL_ERROR: "stopped with a pytest internal error",
        }.get(pytest.ExitCode.INTERRUPTED if interrupted else session.exitstatus)
        if stopped or session.shouldstop or session.shouldfail:
            run.stopped = stopped or f"stopped early ({session.shouldstop or session.shouldfail})"
        elif any(clause_id not in run.results for clause_id in self.collected):  # whatever pytest's exit says
            run.stopped = "ended early (pytest did not say why)"
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        run.complete()
        path = self.config.getoption("metro_report_json", None)
        if path and run.results:
            from metro_e2e.conformance.report import build_report, write_report

            write_report(build_report(run), path)
