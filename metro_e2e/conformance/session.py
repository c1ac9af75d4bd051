"""One live-tier pytest session's run: its options and settings, the local stack when no URL is given, the clauses'
verdicts, cleanup and the JSON report. Everything is kept in the session's ``config.stash`` (``OPTIONS``,
``RUN``), so two sessions in one interpreter share nothing; the pytest plugin only wires this to hooks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from metro_e2e.conformance.catalogue import BY_ID, CLAUSES, NOT_LOCAL
from metro_e2e.conformance.options import Options, from_pytest

OPTIONS = pytest.StashKey[Options]()  # set by check's Preset, else read from the --metro-* options and ini keys


class MetroRun:
    """The live tier's session state: the run context, the verdicts so far, the report at the end."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.results: dict = {}  # clause id -> engine.ClauseResult
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.leftovers: list[str] = []
        self.stopped: str | None = None  # why clauses did not run: the session was interrupted or failed

    def check(self, clause_id: str) -> None:
        """Run the check of ``clause_id`` (the engine gives the verdict); fail or skip the test to match it."""
        from metro_e2e.conformance.engine import PASSED, WARNED, execute

        result = execute(BY_ID[clause_id], self.ctx)
        self.results[clause_id] = result
        if result.verdict == WARNED:  # advisory: reported, not a failing test unless --metro-strict
            pytest.skip(f"warned: {result.detail}")
        if result.verdict != PASSED:
            pytest.fail(f"{result.verdict}: {result.detail}", pytrace=False)

    def gate(self, clause_id: str) -> None:
        """Before a clause's test: skip it (with the enabling option) or block it (a dependency failed)."""
        from metro_e2e.conformance.engine import ClauseResult, gate

        clause = BY_ID[clause_id]
        decision = gate(clause, self.ctx.options, self.results)
        if decision:
            verdict, reason = decision
            self.results[clause.id] = ClauseResult(clause.id, clause.level, clause.mode, verdict, reason)
            pytest.skip(f"{verdict}: {reason}")

    def complete(self) -> None:
        """Give every clause the stopped session did not reach a verdict: ``error`` for one that would have run,
        ``skipped`` (with the option that enables it) for one the options leave out."""
        if not self.stopped:
            return
        from metro_e2e.conformance.engine import ERROR, ClauseResult, requested

        for clause in CLAUSES:
            if clause.id in self.results:
                continue
            if (left_out := requested(clause, self.ctx.options)) is not None:
                self.results[clause.id] = ClauseResult(clause.id, clause.level, clause.mode, *left_out)
                continue
            detail = (
                f"not finished: the session {self.stopped} while this clause ran"
                if clause.id == self.ctx.running
                else f"not run: the session {self.stopped} before it reached this clause"
            )
            self.results[clause.id] = ClauseResult(clause.id, clause.level, clause.mode, ERROR, detail)


RUN = pytest.StashKey[MetroRun]()


def options_of(config: pytest.Config) -> Options:
    """This session's options: what ``check`` handed over, else the ``--metro-*`` options and ``metro_*`` ini keys
    (read once, then kept in the stash)."""
    if OPTIONS not in config.stash:
        config.stash[OPTIONS] = from_pytest(config)
    return config.stash[OPTIONS]


def run_of(config: pytest.Config) -> MetroRun | None:
    return config.stash.get(RUN, None)


def _url_option(config: pytest.Config) -> str | None:
    """The URL given on the command line (``check --url`` or ``--metro-url``); an empty one is bad input."""
    url = options_of(config).url
    return url if url is not None else config.getoption("metro_url", None)


def target_given(config: pytest.Config) -> bool:
    """Whether a gateway URL is set (an empty METRO_URL or ini key is unset; an empty ``--metro-url`` is given, and
    refused as malformed); without one the session checks the local stack."""
    return _url_option(config) is not None or bool(os.environ.get("METRO_URL") or config.getini("metro_url"))


def settings(config: pytest.Config):
    """The platform settings: ``--metro-url`` > ``METRO_*`` env > ``metro_*`` ini keys > defaults."""
    from metro_e2e.config import SETTINGS, load_config

    return load_config(
        cli={"url": _url_option(config)}, environ=os.environ, ini={s.ini: config.getini(s.ini) for s in SETTINGS}
    )


@contextlib.contextmanager
def opened(config: pytest.Config, metro_config) -> Iterator[MetroRun]:
    """The live tier's run: namespace, options, verdicts; cleans up its namespace at the end.

    With no target URL it starts the local stack and checks that: KFP clauses are skipped (KFP does not run
    locally) and SRV-5 restarts the stack's model server. Every client runs under the suite's timeout and retry
    policy; SIGTERM interrupts the run like Ctrl-C (cleanup and the reports still happen).
    """
    from metro_e2e._console import sigterm_as_interrupt
    from metro_e2e.conformance.context import RunContext, cleanup, client_policy

    options = options_of(config)
    run = MetroRun(RunContext(config=metro_config, options=options))
    config.stash[RUN] = run  # before anything can fail: the report is written whatever happens
    with contextlib.ExitStack() as scope:
        scope.enter_context(sigterm_as_interrupt())
        if not target_given(config):
            stack = _start_local_stack()
            scope.callback(_stop_local_stack, stack, run)
            options = dataclasses.replace(
                options,
                skip=(*options.skip, NOT_LOCAL),
                skip_reasons={**options.skip_reasons, NOT_LOCAL: f"{NOT_LOCAL} does not run in the local stack"},
                restart_serving=stack.restart_serving if options.restart_serving is None else options.restart_serving,
            )
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
    backup = ctx.shared.previous_latest
    if backup is not None and ctx.shared.promoting:
        text += (
            f"; latest/ may still hold the check's model: what it held before is at "
            f"s3://{ctx.config.models_bucket}/{backup.prefix} (do not delete it before putting it back)"
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


def _start_local_stack():
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


def finish(config: pytest.Config, session: pytest.Session, collected: list[str], interrupted: bool) -> None:
    """At the end of the session: say how it stopped if it did not complete, give every clause a verdict, and
    write the JSON report."""
    run = run_of(config)
    if run is None:
        return
    stopped = {
        pytest.ExitCode.INTERRUPTED: "was interrupted",
        pytest.ExitCode.INTERNAL_ERROR: "stopped with a pytest internal error",
    }.get(pytest.ExitCode.INTERRUPTED if interrupted else session.exitstatus)
    if stopped or session.shouldstop or session.shouldfail:
        run.stopped = stopped or f"stopped early ({session.shouldstop or session.shouldfail})"
    elif any(clause_id not in run.results for clause_id in collected):  # whatever pytest's exit says
        run.stopped = "ended early (pytest did not say why)"
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    run.complete()
    if run.ctx.options.settings_json:  # check's bundle: the settings this run resolved (the local stack's, if it ran)
        _write_settings(run.ctx, run.ctx.options.settings_json)
    path = options_of(config).report_json
    if path and run.results:
        from metro_e2e.conformance.report import build_report, write_report

        write_report(build_report(run), path)


def _write_settings(ctx, path: str) -> None:
    """Every setting as this run resolved it and where it came from, and the check's options (secrets masked)."""
    import json

    from metro_e2e.config import describe
    from metro_e2e.conformance.options import described

    text = json.dumps({"settings": describe(ctx.config), "options": described(ctx.options)}, indent=2) + "\n"
    Path(path).write_text(ctx.config.mask(text))
