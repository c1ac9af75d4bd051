"""The live tier's pytest hooks, one ``SessionHooks`` object per pytest session (registered by the plugin for each
config, so two sessions in one process stay apart): clause tests in catalogue order, verdicts on the test reports
(JUnit properties; pytest-xdist carries them), progress lines, and the report however the session ends.
"""

from __future__ import annotations

import contextlib
import json

import pytest

from metro_e2e.conformance import session as run_session
from metro_e2e.conformance.catalogue import BY_ID, CLAUSES


def _clause_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("clause")
    return marker.args[0] if marker is not None and marker.args else None


def _has_line(entry) -> bool:
    try:
        return entry.lineno is not None
    except TypeError:  # the frame's instruction has no line number
        return False


class SessionHooks:
    """One pytest session's clause hooks and their state."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.blocked: list[str] = []
        self.reporter = None
        self.collected: list[str] = []
        self.jsonl = False  # --progress jsonl: a JSON object per clause besides its line

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self._progress():
            self.reporter = self.config.pluginmanager.get_plugin("terminalreporter")

    def _progress(self) -> bool:
        try:
            options = run_session.options_of(self.config)
        except Exception:  # noqa: BLE001 - a malformed option is reported where the clauses are collected
            return False
        self.jsonl = options.progress_format == "jsonl"
        return options.progress or self.jsonl

    @pytest.hookimpl(tryfirst=True)  # before -k/-m/--deselect: every clause must be claimed in what was collected
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        """Clause tests: each claims exactly one known clause and every clause is claimed (pytest's own selection
        may then leave some out: the report says so); a malformed setting or option is one usage error, not an
        error per clause. The order is set by ``SessionOrder``, after every other plugin's."""
        claimed = [i for i in items if i.get_closest_marker("clause")]
        if not claimed:
            return
        from metro_e2e.errors import ConfigError

        try:
            run_session.options_of(self.config)
            if run_session.target_given(self.config):
                run_session.settings(self.config)
        except ConfigError as exc:
            raise pytest.UsageError(f"metro-e2e: {exc}") from None
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

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The clauses this session is to run, after deselection: one of them without a verdict at the end means
        the session did not complete. Not known under xdist (the controller collects nothing; a worker runs only
        what it is sent)."""
        if hasattr(self.config, "workerinput"):
            return
        self.collected = [c for i in session.items if (c := _clause_of(i))]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        """Clause ids, verdicts and details ride on the report (JUnit properties; pytest-xdist carries them)."""
        report = yield
        clause_id, run = _clause_of(item), run_session.run_of(item.config)
        if clause_id is None or run is None or call.when == "teardown":
            return report
        from metro_e2e.conformance.engine import ERROR, SKIPPED, ClauseResult

        clause = BY_ID[clause_id]
        result = run.results.get(clause.id)
        if result is None and report.failed:  # the test could not run its check: a fixture or the plugin failed
            text = str(call.excinfo.value) if call.excinfo else report.longreprtext
            first = text.strip().splitlines()[0] if text.strip() else "failed"
            detail = f"not run: its {call.when} failed: {first}"
            result = ClauseResult(clause.id, clause.level, clause.mode, ERROR, run.ctx.config.mask(detail))
            run.results[clause.id] = result
        elif result is None and report.skipped:
            if isinstance(report.longrepr, tuple) and not hasattr(report, "wasxfail"):  # a skip mark, a fixture's
                verdict, detail = SKIPPED, report.longrepr[2].removeprefix("Skipped: ")
            else:  # an xfail mark turned the failure of its setup into a skip: the check never ran
                verdict, detail = ERROR, f"not run: an xfail mark stopped its {call.when}"
            result = ClauseResult(clause.id, clause.level, clause.mode, verdict, run.ctx.config.mask(detail))
            run.results[clause.id] = result
        if result is None or (call.when == "setup" and report.passed):
            return report
        properties = [("clause", clause.id), ("verdict", result.verdict), ("detail", result.detail)]
        properties += [("level", clause.level), ("duration_s", str(result.duration_s))]
        if result.budget_s is not None:
            properties.append(("budget_s", str(result.budget_s)))
        item.user_properties[:] = [p for p in item.user_properties if p[0] == "clause"] + properties[1:]
        report.user_properties = list(item.user_properties)  # the progress line reads the report
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config):
        """With the ``progress`` option a clause's line replaces pytest's progress letter."""
        if not self._progress() or "clause" not in dict(report.user_properties):
            return None
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            return report.outcome, "", ""
        return "", "", ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note blocked core clauses (they fail the run, also under xdist); with ``progress`` print a line."""
        props = dict(report.user_properties)
        if "clause" not in props or "verdict" not in props or report.when not in ("setup", "call"):
            return
        if report.when == "setup" and report.passed:
            return
        if props["verdict"] == "blocked" and props.get("level") == "core":
            self.blocked.append(props["clause"])
        if self.reporter is not None:
            self.reporter.write_line(f"  {props['clause']:6} {props['verdict']:8} {props.get('detail', '')[:100]}")
            if self.jsonl:
                line = {"id": props["clause"], "verdict": props["verdict"], "seconds": float(props["duration_s"])}
                self.reporter.write_line(json.dumps(line))
                self.reporter.flush()  # a CI log or dashboard follows it as the run goes

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
            if self.blocked and session.exitstatus == pytest.ExitCode.OK:  # the controller sees every worker's
                session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a blocked core clause fails the run, as in check
            run_session.finish(self.config, session, self.collected, interrupted)


class SessionOrder:
    """The clause tests run in catalogue order, after every other test: sorted last, after conftest's and other
    plugins' reordering and pytest's own selection (a dependency must run before its dependents)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        order = {c.id: n for n, c in enumerate(CLAUSES)}
        claimed = [i for i in items if _clause_of(i) in order]
        others = [i for i in items if _clause_of(i) not in order]
        items[:] = others + sorted(claimed, key=lambda i: order[_clause_of(i)])
