"""Reports for tests that read, compare or gate runs without running one: a complete run's JSON report with the
verdicts a test names, and a stand-in for the pytest session ``check`` runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from metro_e2e.conformance.catalogue import CLAUSES
from metro_e2e.conformance.engine import ClauseResult
from metro_e2e.conformance.report import _report


def a_report(**verdicts: str) -> dict:
    """A complete run's report: every clause passed in 1 s unless ``verdicts`` says (``MLF_3="failed"``)."""
    assert {k.replace("_", "-") for k in verdicts} <= {c.id for c in CLAUSES}, verdicts
    results = []
    for c in CLAUSES:
        verdict = verdicts.get(c.id.replace("-", "_"), "passed")
        detail = {"passed": f"ok in 12 ms, run 0a1b2c3d4e{c.id[-1]}"}.get(verdict, f"{verdict}: expected 200, got 500")
        results.append(ClauseResult(c.id, c.level, c.mode, verdict, detail, 1.0, 30.0))
    return _report(
        target="http://gw.example", mode="default", started_at="2026-11-27T10:00:00Z", run_id="r1", results=results
    )


def with_durations(report: dict, **seconds: float) -> dict:
    out = copy.deepcopy(report)
    for c in out["clauses"]:
        c["duration_s"] = seconds.get(c["id"].replace("-", "_"), c["duration_s"])
    return out


def fake_session(report: dict, code, *, teardown_error: str | None = None):
    """A pytest.main that writes ``report`` where the plugin would and ends with ``code``; with ``teardown_error``
    (a clause id) that clause's test fails in its teardown, as pytest tells its plugins."""

    def main(args, plugins=()):
        if teardown_error:
            from types import SimpleNamespace

            failed = SimpleNamespace(failed=True, when="teardown", user_properties=[("clause", teardown_error)])
            for plugin in plugins:
                if hasattr(plugin, "pytest_runtest_logreport"):
                    plugin.pytest_runtest_logreport(failed)
        path = next(p.options.report_json for p in plugins if hasattr(p, "options"))
        Path(path).write_text(json.dumps(report))
        return code

    return main
