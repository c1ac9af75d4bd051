"""``check --bundle``, ``--html`` and ``--baseline`` against a real platform on loopback (the seeded local stack,
broken through its gateway): the bundle holds what a CI job attaches and verifies; the page renders the run in a
real browser; a known failure does not fail the gate, a regression does, and ``diff`` reports it.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from metro_e2e import cli
from metro_e2e.conformance import bundle
from metro_e2e.stack.gateway import Fault

from .browser import render
from .checking import broken_gateway, check, expect_outcome, verdicts

UI_NOT_ROUTED = Fault(path=r"^/mlflow/static-files/", status=404, why="UI assets not routed")  # MLF-2 fails
SERVER_1_30 = Fault(path=r"^/mlflow/version$", status=200, body="1.30.0", why="an MLflow 1.x server")  # MLF-3 fails
MLF_2_FAILS = {"MLF-2": r"every referenced script and stylesheet to load as one; got .*\.js -> HTTP 404"}
MLF_3_FAILS = {"MLF-3": r"client 2\.\d+\.\d+ with server 1\.30\.0"}


def _check(stack, tmp_path, *args, faults=()):
    with broken_gateway(stack, faults=tuple(faults)):
        return check(tmp_path, "--url", stack.gateway_url, "--skip", "KFP", *args)


def test_a_bundle_holds_the_run_and_its_page_renders_it(metro_seeded_stack, tmp_path):
    path, page = tmp_path / "out" / "run.tar.gz", tmp_path / "out" / "run.html"
    code, report, out = _check(
        metro_seeded_stack, tmp_path, "--bundle", str(path), "--html", str(page), faults=[UI_NOT_ROUTED]
    )
    assert code == 1, out[-3000:]
    expect_outcome(report, MLF_2_FAILS)
    assert f"bundle: {path}" in out and f"html: {page}" in out
    loaded = bundle.load(path)
    assert loaded.report == report, "the bundle's report is the run's"
    assert set(loaded.files) >= {"junit.xml", "report.html", "config.json", "versions.json", "evidence/GW-1.jsonl"}
    assert loaded.files["report.html"] == page.read_bytes(), "the page in the bundle is the one written"
    config = json.loads(loaded.files["config.json"])
    assert config["settings"]["s3_secret_key"].startswith("***") and config["options"]["bundle"] == str(path)
    found = json.loads(loaded.files["versions.json"])
    assert found["platform"]["mlflow_server"] == report["versions"]["mlflow_server"] is not None
    assert found["this_environment"]["packages"]["mlflow"] == report["versions"]["mlflow_client"]
    cases = ET.fromstring(loaded.files["junit.xml"]).iter("testcase")
    assert len(list(cases)) == len(report["clauses"])
    for name, data in loaded.files.items():
        assert b"minio123" not in data, name
    seen = render(page)
    assert seen.problems == [] and seen.verdicts() == verdicts(report)


def _clause(case) -> str | None:
    return next((p.get("value") for p in case.iter("property") if p.get("name") == "clause"), None)


def test_a_known_failure_passes_the_gate_and_a_regression_fails_it(metro_seeded_stack, tmp_path, capsys):
    baseline = tmp_path / "baseline.tar.gz"
    code, first, out = _check(metro_seeded_stack, tmp_path, "--bundle", str(baseline), faults=[UI_NOT_ROUTED])
    assert code == 1, out[-3000:]
    expect_outcome(first, MLF_2_FAILS)

    junit = tmp_path / "junit.xml"
    code, again, out = _check(
        metro_seeded_stack, tmp_path, "--baseline", str(baseline), "--junit-xml", str(junit), faults=[UI_NOT_ROUTED]
    )
    expect_outcome(again, MLF_2_FAILS)
    assert code == 0, "MLF-2 failed in the baseline too: a known failure does not fail the gate\n" + out[-3000:]
    assert again["baseline"]["known_failures"] == ["MLF-2"] and again["baseline"]["regressions"] == []
    assert "known failure MLF-2: failed, as in the baseline" in out
    (case,) = [c for c in ET.parse(junit).getroot().iter("testcase") if _clause(c) == "MLF-2"]
    assert case.find("failure") is None and "known failure" in case.find("skipped").get("message")

    now = tmp_path / "now.json"
    code, worse, out = _check(
        metro_seeded_stack, tmp_path, "--baseline", str(baseline), faults=[UI_NOT_ROUTED, SERVER_1_30]
    )
    expect_outcome(worse, {**MLF_2_FAILS, **MLF_3_FAILS})
    assert code == 1, out[-3000:]
    assert worse["baseline"]["known_failures"] == ["MLF-2"]
    assert worse["baseline"]["regressions"] == ["MLF-3", "MLF-4", "MLF-5"], "MLF-3 failed, its dependents blocked"
    now.write_text(json.dumps(worse))

    capsys.readouterr()
    assert cli.main(["diff", str(baseline), str(now)]) == 1, "diff reports the regression too"
    out = capsys.readouterr().out
    assert "worse: 3" in out and "MLF-3   passed -> failed" in out and "3 regression(s)" in out


def test_a_check_that_cannot_start_still_leaves_its_bundle_and_page(tmp_path):
    """Bad input (exit 2): the bundle and the page a CI job attaches exist, every clause ``error`` with the reason."""
    import subprocess
    import sys

    out = tmp_path / "out"
    argv = ["--url", "http://127.0.0.1:9", "--baseline", str(tmp_path / "absent.json")]
    argv += ["--bundle", str(out / "run.tar.gz"), "--html", str(out / "run.html")]
    done = subprocess.run(
        [sys.executable, "-m", "metro_e2e.cli", "check", *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    loaded = bundle.load(out / "run.tar.gz")
    assert {c["verdict"] for c in loaded.report["clauses"]} == {"error"}
    assert all("absent.json' does not exist" in c["detail"] for c in loaded.report["clauses"])
    seen = render(out / "run.html")
    assert seen.problems == [] and set(seen.verdicts().values()) == {"error"}
