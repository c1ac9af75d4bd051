"""Verdicts as CONTRACT.md defines them, independent of pytest.

``gate`` decides before a clause runs whether it is ``skipped`` (not
requested, or the mode forbids it: the reason names the option that enables
it) or ``blocked`` (a clause it depends on failed). ``verdict`` turns an
outcome into ``passed`` / ``failed`` / ``warned``. ``exit_code`` is 0 if and
only if no core clause failed or was blocked (under ``strict``, no advisory
clause warned either).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from metro_e2e.conformance.catalogue import ADVISORY, CORE, PROMOTE, QUICK, Clause, matches
from metro_e2e.conformance.context import Options

PASSED, FAILED, BLOCKED, SKIPPED, WARNED = "passed", "failed", "blocked", "skipped", "warned"
VERDICTS = (PASSED, FAILED, BLOCKED, SKIPPED, WARNED)


@dataclass
class ClauseResult:
    id: str
    level: str
    mode: str
    verdict: str
    detail: str
    duration_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def gate(clause: Clause, options: Options, results: dict[str, ClauseResult]) -> tuple[str, str] | None:
    """``(verdict, reason)`` when ``clause`` must not run; ``None`` when it should run."""
    for selector in options.skip:
        if matches(clause, selector):
            if selector in options.skip_reasons:
                return SKIPPED, options.skip_reasons[selector]
            return SKIPPED, f"--skip {selector} (remove it to check this clause)"
    if options.quick and clause.id not in QUICK:
        return SKIPPED, "not part of --quick (run without --quick)"
    if clause.mode == PROMOTE and not options.allow_promote:
        return SKIPPED, "changes what the platform serves: enable with --allow-promote"
    if clause.component == "KFP" and clause.id != "KFP-1" and not options.step_image:
        return SKIPPED, "runs the pipeline in a step image: enable with --step-image IMAGE"
    if clause.id == "SRV-5" and options.restart_serving is None:
        return SKIPPED, "needs a serving restart: enable with --restart-serving CMD"
    failed = [d for d in clause.depends_on if d in results and results[d].verdict in (FAILED, BLOCKED)]
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


def exit_code(results: list[ClauseResult], *, strict: bool) -> int:
    bad = {FAILED, BLOCKED} | ({WARNED} if strict else set())
    return 1 if any(r.verdict in bad and (r.level == CORE or strict) for r in results) else 0


def mode_name(options: Options) -> str:
    if options.quick:
        return "quick"
    return "promote" if options.allow_promote else "default"
