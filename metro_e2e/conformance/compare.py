"""Two runs compared, clause by clause: what got worse, better, changed detail or markedly slower, and the gate of
``check --baseline`` (a known failure does not fail the run; a regression does).

``diff(old, new)`` puts each clause the two reports share in at most one list:

- **worse** (a regression): it passed and does not now (failed, blocked, error, warned, or skipped: no longer
  checked), or it went from warned or skipped to failed, blocked or error;
- **better**: it did not pass and does now, or went from failed, blocked or error to warned;
- **changed**: any other change of verdict (failed to blocked, failed to skipped ...), or the same verdict with a
  detail that differs beyond its numbers and ids (timings, run ids, versions and counts differ on every run);
- **slower** (a regression): it passed both times and took at least ``ratio`` times as long *and* at least
  ``floor_s`` seconds more, so the noise of a fast clause is not a regression.

``gate(report, baseline)``: a clause that *failed* in the baseline and still fails is a *known failure* and does
not fail the run; so is one blocked in both runs only by known failures (a blocked clause was never checked, so it
is excused only as a consequence of one). Every other clause is gated as without a baseline, and a regression fails
the run. A baseline that cannot excuse anything honestly is refused: one that stopped early, one whose gateway
(GW-1) did not pass (nothing behind it was checked), one of another clause catalogue (a clause id may promise
something else there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from metro_e2e.conformance.catalogue import BY_ID, GATEWAY
from metro_e2e.conformance.engine import BLOCKED, ERROR, FAILED, PASSED, SKIPPED, WARNED, ClauseResult, exit_code
from metro_e2e.conformance.options import DEFAULT_SLOWER_FLOOR_S, DEFAULT_SLOWER_RATIO
from metro_e2e.errors import ConfigError

_BAD = (FAILED, BLOCKED, ERROR)
_NUMBER_OR_ID = re.compile(r"[0-9a-fA-F]*[0-9][0-9a-fA-F]*")


def normalized(detail: str) -> str:
    """``detail`` with every number and hex id replaced by ``#``: what stays the same from run to run."""
    return _NUMBER_OR_ID.sub("#", detail)


@dataclass(frozen=True)
class Change:
    id: str
    old_verdict: str
    new_verdict: str
    old_detail: str
    new_detail: str
    old_s: float
    new_s: float

    def line(self) -> str:
        verdict = (
            f"{self.old_verdict} -> {self.new_verdict}" if self.old_verdict != self.new_verdict else self.new_verdict
        )
        return f"{self.id:7} {verdict}: {self.new_detail}" + (
            f" (was: {self.old_detail})" if self.old_detail != self.new_detail else ""
        )


@dataclass
class Diff:
    old: dict
    new: dict
    worse: list[Change] = field(default_factory=list)
    better: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    slower: list[Change] = field(default_factory=list)
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    ratio: float = DEFAULT_SLOWER_RATIO
    floor_s: float = DEFAULT_SLOWER_FLOOR_S

    @property
    def regressions(self) -> list[Change]:
        return self.worse + self.slower

    def context(self) -> list[str]:
        """What differs between the two runs themselves: a comparison across these is read with care."""
        out = []
        for key, what in (("target", "target"), ("mode", "mode"), ("catalogue_version", "catalogue")):
            if self.old.get(key) != self.new.get(key):
                out.append(f"{what} differs: {self.old.get(key)} -> {self.new.get(key)}")
        for name, old in self.old["versions"].items():
            if old != self.new["versions"].get(name):
                out.append(f"{name} differs: {old} -> {self.new['versions'].get(name)}")
        return out

    def lines(self) -> list[str]:
        out = [
            f"old: {self.old['run_id']} ({self.old['started_at']}, {self.old['mode']} mode, {self.old['target']})",
            f"new: {self.new['run_id']} ({self.new['started_at']}, {self.new['mode']} mode, {self.new['target']})",
        ]
        out += [f"note: {c}" for c in self.context()]
        sections = (
            ("worse", self.worse, lambda c: c.line()),
            ("better", self.better, lambda c: c.line()),
            ("changed", self.changed, lambda c: c.line()),
            (
                f"markedly slower (at least {self.ratio:g} x and {self.floor_s:g} s more)",
                self.slower,
                lambda c: (
                    f"{c.id:7} {c.old_s:.1f} s -> {c.new_s:.1f} s"
                    + (f" ({c.new_s / c.old_s:.1f} x)" if c.old_s else "")
                ),
            ),
        )
        for title, changes, show in sections:
            out.append(f"{title}: {len(changes)}")
            out += [f"  {show(c)}" for c in changes]
        if self.only_old or self.only_new:
            out.append(
                f"only in old: {', '.join(self.only_old) or '-'}; only in new: {', '.join(self.only_new) or '-'}"
            )
        n = len(self.regressions)
        out.append(f"{n} regression(s)" if n else "no regression")
        return out

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return {
            "old": {k: self.old[k] for k in ("run_id", "started_at", "target", "mode", "catalogue_version")},
            "new": {k: self.new[k] for k in ("run_id", "started_at", "target", "mode", "catalogue_version")},
            "context": self.context(),
            **{name: [asdict(c) for c in getattr(self, name)] for name in ("worse", "better", "changed", "slower")},
            "only_old": self.only_old,
            "only_new": self.only_new,
            "slower_ratio": self.ratio,
            "slower_floor_s": self.floor_s,
            "regressions": [c.id for c in self.regressions],
        }


def _kind(old: str, new: str) -> str | None:
    """``worse``, ``better`` or ``changed`` for a change of verdict from ``old`` to ``new``."""
    if old == PASSED:
        return "worse"
    if new == PASSED:
        return "better"
    if old in (WARNED, SKIPPED) and new in _BAD:
        return "worse"
    if old in _BAD and new == WARNED:
        return "better"
    return "changed"


def diff(old: dict, new: dict, *, ratio: float = DEFAULT_SLOWER_RATIO, floor_s: float = DEFAULT_SLOWER_FLOOR_S) -> Diff:
    """How the run ``new`` differs from ``old`` (two JSON reports), clause by clause."""
    before = {c["id"]: c for c in old["clauses"]}
    after = {c["id"]: c for c in new["clauses"]}
    out = Diff(old, new, ratio=ratio, floor_s=floor_s)
    out.only_old = [i for i in before if i not in after]
    out.only_new = [i for i in after if i not in before]
    for clause_id, now in after.items():
        was = before.get(clause_id)
        if was is None:
            continue
        change = Change(
            clause_id,
            was["verdict"],
            now["verdict"],
            was["detail"],
            now["detail"],
            was["duration_s"],
            now["duration_s"],
        )
        if was["verdict"] != now["verdict"]:
            getattr(out, _kind(was["verdict"], now["verdict"])).append(change)
        elif normalized(was["detail"]) != normalized(now["detail"]):
            out.changed.append(change)
        if (
            was["verdict"] == now["verdict"] == PASSED
            and now["duration_s"] >= ratio * was["duration_s"]
            and now["duration_s"] - was["duration_s"] >= floor_s
        ):
            out.slower.append(change)
    return out


def usable_baseline(baseline: dict, source: str) -> None:
    """Refuse (``ConfigError``) a baseline whose verdicts cannot say which failures are known: one of a run that
    stopped early (its clauses not reached are ``error``), one whose gateway did not pass (every other clause was
    blocked, never checked), one of another clause catalogue (the same id may promise something else)."""
    from metro_e2e.conformance.catalogue import catalogue_version

    verdicts = {c["id"]: c["verdict"] for c in baseline["clauses"]}
    if baseline.get("stopped"):
        why = f"is the report of a run that {baseline['stopped']}"
    elif verdicts.get(GATEWAY) != PASSED:
        why = f"is the report of a run whose {GATEWAY} {verdicts.get(GATEWAY, 'is missing')}: nothing behind the gateway was checked"
    elif baseline["catalogue_version"] != catalogue_version():
        why = (
            f"checked clause catalogue {baseline['catalogue_version']}, this metro-e2e checks {catalogue_version()}: "
            "a clause may promise something else there"
        )
    else:
        return
    raise ConfigError(
        f"--baseline {source} {why}, so it cannot say which failures are known",
        setting="baseline",
        source="command-line option --baseline",
        hint="give the bundle or report of a complete run of this metro-e2e whose GW-1 passed",
    )


def known_failures(report: dict, baseline: dict) -> dict[str, str]:
    """The clauses of ``report`` that are known failures of ``baseline`` (clause id -> the baseline's detail): failed
    in both, or blocked in both with every dependency that blocks it now a known failure (catalogue order)."""
    before = {c["id"]: c for c in baseline["clauses"]}
    now = {c["id"]: c for c in report["clauses"]}
    known: dict[str, str] = {}
    for c in report["clauses"]:
        was = before.get(c["id"], {}).get("verdict")
        if c["verdict"] == FAILED and was == FAILED:
            known[c["id"]] = before[c["id"]]["detail"]
        elif c["verdict"] == BLOCKED and was == BLOCKED and c["id"] in BY_ID:
            blocking = [d for d in BY_ID[c["id"]].depends_on if now.get(d, {}).get("verdict") != PASSED]
            if blocking and all(d in known for d in blocking):
                known[c["id"]] = before[c["id"]]["detail"]
    return known


@dataclass
class Gate:
    """``check --baseline``'s decision: the known failures (clause id -> the baseline's detail), the comparison and
    the exit code of the verdicts with the known failures excused and the regressions counted."""

    known: dict[str, str]
    diff: Diff
    exit_code: int

    def summary(self, source: str) -> dict:
        """What the JSON report records of the baseline (``baseline`` in report.schema.json)."""
        return {
            "source": source,
            "run_id": self.diff.old["run_id"],
            "started_at": self.diff.old["started_at"],
            "known_failures": sorted(self.known, key=[c["id"] for c in self.diff.new["clauses"]].index),
            "regressions": [c.id for c in self.diff.regressions],
            "slower_ratio": self.diff.ratio,
            "slower_floor_s": self.diff.floor_s,
        }


def gate(
    report: dict,
    baseline: dict,
    *,
    strict: bool,
    ratio: float = DEFAULT_SLOWER_RATIO,
    floor_s: float = DEFAULT_SLOWER_FLOOR_S,
) -> Gate:
    """Gate ``report`` on its regressions against ``baseline``: exit 1 if a clause that is not a known failure fails
    the run as it would without a baseline, or if any clause regressed."""
    known = known_failures(report, baseline)
    compared = diff(baseline, report, ratio=ratio, floor_s=floor_s)
    rest = [ClauseResult(**c) for c in report["clauses"] if c["id"] not in known]
    code = max(exit_code(rest, strict=strict), 1 if compared.regressions else 0)
    return Gate(known, compared, code)
