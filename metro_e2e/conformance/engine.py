"""Verdicts as CONTRACT.md defines them, independent of pytest.

``gate`` decides before a clause runs whether it is ``skipped`` (not
requested, or the mode forbids it: the reason names the option that enables
it) or ``blocked`` (a clause it depends on failed). ``execute`` runs a
clause's check within its time budget and turns the outcome into a verdict:
``passed``, ``failed`` (the platform broke the promise, or did not answer in
time), ``warned`` (an advisory clause failed) or ``error`` (no verdict was
reached: the check crashed, could not decide, or never ran because the
session was interrupted). ``exit_code`` is 0 if and only if no core clause
failed, errored or was blocked (under ``strict``, no advisory clause warned
or errored either).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from metro_e2e.conformance.catalogue import ADVISORY, CORE, PROMOTE, Clause, matches
from metro_e2e.conformance.context import BudgetExceeded, ClauseFailed, RunContext, Undecided
from metro_e2e.conformance.options import Options, usage
from metro_e2e.errors import MetroE2EError

PASSED, FAILED, BLOCKED, SKIPPED, WARNED, ERROR = "passed", "failed", "blocked", "skipped", "warned", "error"
VERDICTS = (PASSED, FAILED, BLOCKED, SKIPPED, WARNED, ERROR)
NOT_PASSED = (FAILED, BLOCKED, ERROR)  # what blocks a dependent and, for a core clause, fails the run


@dataclass
class ClauseResult:
    id: str
    level: str
    mode: str
    verdict: str
    detail: str
    duration_s: float = 0.0
    budget_s: float | None = None  # None: the clause did not run

    def as_dict(self) -> dict:
        return asdict(self)


def requested(clause: Clause, options: Options) -> tuple[str, str] | None:
    """``(SKIPPED, reason)`` when the options leave ``clause`` out (the reason names the option that enables it)."""
    for selector in options.skip:
        if matches(clause, selector):
            if selector in options.skip_reasons:
                return SKIPPED, options.skip_reasons[selector]
            return SKIPPED, f"--skip {selector} (remove it to check this clause)"
    if options.quick and not clause.quick:
        return SKIPPED, "not part of --quick (run without --quick)"
    if clause.mode == PROMOTE and not options.allow_promote:
        return SKIPPED, f"changes what the platform serves: enable with {usage('allow_promote')}"
    if clause.needs is not None and not getattr(options, clause.needs.option):
        return SKIPPED, f"{clause.needs.why}: enable with {usage(clause.needs.option)}"
    return None


def gate(clause: Clause, options: Options, results: dict[str, ClauseResult]) -> tuple[str, str] | None:
    """``(verdict, reason)`` when ``clause`` must not run; ``None`` when it should run."""
    if (left_out := requested(clause, options)) is not None:
        return left_out
    failed = [d for d in clause.depends_on if d in results and results[d].verdict in NOT_PASSED]
    if failed:
        return BLOCKED, f"depends on {', '.join(failed)}, which " + (
            "failed" if all(results[d].verdict == FAILED for d in failed) else "did not pass"
        )
    skipped = [d for d in clause.depends_on if d in results and results[d].verdict == SKIPPED]
    if skipped:
        return SKIPPED, f"depends on {', '.join(skipped)}, which was skipped: {results[skipped[0]].detail}"
    missing = [d for d in clause.depends_on if d not in results]
    if missing:
        return BLOCKED, f"depends on {', '.join(missing)}, which did not run first"
    return None


def verdict(clause: Clause, passed: bool, *, strict: bool) -> str:
    if passed:
        return PASSED
    return WARNED if clause.level == ADVISORY and not strict else FAILED


def budget_s(clause: Clause, ctx: RunContext) -> float:
    """The seconds ``clause`` may take against ``ctx``'s target: its budget with this run's timeouts and waits."""
    budget = clause.budget
    per_request = ctx.config.connect_timeout + ctx.config.read_timeout
    extra = float(getattr(ctx.options, budget.option)) if budget.option else 0.0
    return budget.seconds + budget.requests * per_request + extra


def execute(clause: Clause, ctx: RunContext) -> ClauseResult:
    """Run ``clause``'s check within its budget; the verdict and a one-line detail (secrets masked).

    Never raises for what a check does; ``KeyboardInterrupt`` (an interrupted session) passes through.
    """
    from metro_e2e.conformance.checks import CHECKS
    from metro_e2e.conformance.checks._common import prepare

    limit = budget_s(clause, ctx)
    started = time.monotonic()
    try:
        ctx.running = clause.id
        prepare(clause.id)  # what the check imports (MLflow alone takes seconds), before its clock starts
        started = time.monotonic()
        with _deadline(limit) as finished:
            detail = CHECKS[clause.id](ctx)
            finished.set()
        outcome = PASSED
    except ClauseFailed as exc:
        outcome, detail = verdict(clause, False, strict=ctx.options.strict), str(exc)
    except MetroE2EError as exc:  # a component refused or did not answer: the platform's failure
        outcome, detail = verdict(clause, False, strict=ctx.options.strict), str(exc)
    except BudgetExceeded:
        outcome = verdict(clause, False, strict=ctx.options.strict)
        detail = (
            f"expected the check to finish within its budget of {limit:g} s ({clause.budget.describe()}); "
            f"got no end after {time.monotonic() - started:.0f} s (METRO_CONNECT_TIMEOUT / METRO_READ_TIMEOUT "
            "set the per-request part)"
        )
    except Undecided as exc:
        outcome, detail = ERROR, f"cannot decide: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug in the check is an error verdict, never a pass or a failure
        outcome = ERROR
        detail = f"the check itself crashed: {type(exc).__name__}: {exc} (a metro-e2e bug; please report it)"
    ctx.running = None  # left set only when an interrupt ends the check (the report names the clause)
    line = (detail or outcome).strip().splitlines()[0] if (detail or "").strip() else outcome
    return ClauseResult(
        clause.id,
        clause.level,
        clause.mode,
        outcome,
        ctx.config.mask(line),
        round(time.monotonic() - started, 2),
        round(limit, 1),
    )


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[threading.Event]:
    """Raise ``BudgetExceeded`` into the block after ``seconds`` unless the block set the event it was given
    (SIGALRM; main thread only, elsewhere unbounded)."""
    finished = threading.Event()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield finished
        return

    def expire(signum, frame):
        if not finished.is_set():  # an alarm that lands between the check's return and the reset is not a timeout
            raise BudgetExceeded()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield finished
    finally:
        finished.set()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def exit_code(results: list[ClauseResult], *, strict: bool) -> int:
    bad = set(NOT_PASSED) | ({WARNED} if strict else set())
    return 1 if any(r.verdict in bad and (r.level == CORE or strict) for r in results) else 0


def mode_name(options: Options) -> str:
    if options.quick:
        return "quick"
    return "promote" if options.allow_promote else "default"
