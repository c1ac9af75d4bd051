"""`metro-e2e check` as a whole: a healthy local stack passes and the reports validate; an unreachable target and
an interrupted run still leave complete reports; evidence, the no-URL mode and promote mode.

The breakage tests, one or more per clause, are in ``test_breakages_*.py`` and ``test_check_kfp.py``.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from metro_e2e import promotion
from metro_e2e.conformance.catalogue import CLAUSES
from metro_e2e.storage import Storage

from .checking import check, detail, expect_outcome, verdicts

SCHEMA = Path(__file__).resolve().parents[2] / "metro_e2e" / "conformance" / "report.schema.json"


def test_healthy_local_stack_passes_and_reports_validate(metro_seeded_stack, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    junit = tmp_path / "junit.xml"
    code, report, out = check(
        tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP", "--junit-xml", str(junit), fresh=True
    )
    assert code == 0, out[-3000:]
    v = verdicts(report)
    core_non_kfp = [
        c
        for c in report["clauses"]
        if c["level"] == "core" and not c["id"].startswith("KFP") and c["mode"] != "promote"
    ]
    assert all(c["verdict"] == "passed" for c in core_non_kfp), v
    assert v["S3-5"] == "warned" and v["PRM-2"] == "skipped" and v["KFP-1"] == "skipped"
    assert report["leftovers"] == []
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    cases = ET.parse(junit).getroot().iter("testcase")
    props = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert {p["clause"] for p in props} == set(v) and all("verdict" in p for p in props)
    assert "minio123" not in out and "minio123" not in junit.read_text()


@pytest.mark.parametrize(
    "env",
    [{}, {"METRO_S3_ACCESS_KEY": "not-minio", "METRO_S3_SECRET_KEY": "wrong-secret-7"}],
    ids=["healthy", "wrong-access-key"],
)
def test_a_forked_check_has_the_outcome_of_the_command_run_fresh(metro_seeded_stack, tmp_path, env):
    """The breakage tests run `metro-e2e check` forked from a process that has imported the suite (checking.py):
    the same exit code, verdicts and details (numbers aside) as the command in a new interpreter."""

    def outcome(**how):
        code, report, _ = check(tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP", env=env, **how)
        return code, {
            c["id"]: (c["verdict"], re.sub(r"[0-9a-f]*[0-9][0-9a-f]*", "#", c["detail"])) for c in report["clauses"]
        }

    fresh, forked = outcome(fresh=True), outcome()
    assert forked == fresh
    assert fresh[0] == (1 if env else 0), fresh


def test_unreachable_gateway_fails_gw_1_and_still_writes_the_reports(tmp_path):
    """A CI job that publishes the reports sees GW-1 failed and why, every other clause blocked (or left out by
    the options), and the one sentence on stderr; the live tier through pytest gives the same verdicts."""
    jsonschema = pytest.importorskip("jsonschema")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    junit = tmp_path / "junit.xml"
    code, report, out = check(tmp_path, "--url", url, "--junit-xml", str(junit), timeout=120, fresh=True)
    assert code == 1, out[-2000:]
    expect_outcome(
        report, {"GW-1": r"got none: .* connection refused: nothing listens there \(check --url / METRO_URL"}
    )
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    props = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert sorted(p["clause"] for p in props) == sorted(verdicts(report))
    assert {p["clause"]: p["verdict"] for p in props} == verdicts(report)
    assert all(c["duration_s"] < 15 for c in report["clauses"])

    done = subprocess.run(
        [sys.executable, "-m", "metro_e2e.cli", "check", "--url", url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("metro-e2e: error: GW-1 failed, so no other clause ran: ")
    assert "connection refused" in done.stderr and "--url / METRO_URL" in done.stderr

    report_path = tmp_path / "live.json"
    live = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs", "metro_e2e.conformance.suite"]
        + ["--metro-url", url, "--metro-quick", "--metro-report-json", str(report_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert live.returncode == 1, live.stdout[-2000:]
    expect_outcome(json.loads(report_path.read_text()), {"GW-1": r"connection refused"})


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_check_gives_no_verdict_to_what_it_did_not_reach(metro_seeded_stack, tmp_path, sig):
    """A cancelled CI job sends SIGINT (then SIGTERM): the run cleans up, the reports name every clause, the ones
    it did not reach are ``error`` (never ``skipped`` or passed), and the exit code is not 0."""
    report_path, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "metro_e2e.cli", "check", "--url", metro_seeded_stack.gateway_url, "--skip", "KFP"]
    argv += ["--report-json", str(report_path), "--junit-xml", str(junit)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:  # bounded: the check ends on its own if the line never comes
        seen.append(line)
        if line.split()[:1] == ["MLF-4"]:
            proc.send_signal(getattr(signal, sig))
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert err.strip().splitlines()[-1].startswith("metro-e2e: error: the run was interrupted: ")
    report = json.loads(report_path.read_text())
    v = verdicts(report)
    order = list(v)
    assert all(v[c] in ("passed", "warned") for c in order[: order.index("MLF-4") + 1])
    # the signal lands while MLF-5 runs or just before it starts
    assert v["MLF-5"] == "error" and detail(report, "MLF-5").startswith(
        ("not finished: the session was interrupted while", "not run: the session was interrupted before")
    )
    for clause_id in order[order.index("MLF-5") + 1 :]:
        if clause_id.startswith("KFP") or clause_id in ("PRM-2", "SRV-5"):
            assert v[clause_id] == "skipped", (clause_id, detail(report, clause_id))  # left out by the options
        else:
            assert v[clause_id] == "error", (clause_id, v[clause_id])
            assert detail(report, clause_id) == "not run: the session was interrupted before it reached this clause"
    assert report["leftovers"] == []  # the cleanup still ran
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == len(CLAUSES) and all(case.get("name") for case in cases)
    errors = [case for case in cases if case.find("error") is not None]
    assert len(errors) == list(v.values()).count("error")


def test_evidence_holds_excerpts_and_never_credentials(metro_seeded_stack, tmp_path):
    evidence = tmp_path / "evidence"
    code, report, out = check(
        tmp_path,
        "--url",
        metro_seeded_stack.gateway_url,
        "--skip",
        "KFP",
        "--evidence-dir",
        str(evidence),
        env={"METRO_S3_SECRET_KEY": "minio123"},
        fresh=True,
    )
    assert code == 0, out[-2000:]
    files = list(evidence.rglob("*"))
    assert any(f.name == "SRV-3.jsonl" for f in files) and any(f.name == "GW-1.jsonl" for f in files)
    record = json.loads((evidence / "SRV-3.jsonl").read_text().splitlines()[0])
    assert record["status"] == 400 and "url" in record and "body_excerpt" in record
    for f in files:
        if f.is_file():
            text = f.read_text(errors="replace")
            assert "minio123" not in text and "Authorization" not in text, f


def test_check_without_url_checks_a_seeded_local_stack(tmp_path):
    from .conftest import _require_nginx

    _require_nginx()
    evidence, results = tmp_path / "evidence", tmp_path / "run.tar.gz"
    code, report, out = check(tmp_path, "--evidence-dir", str(evidence), "--bundle", str(results), fresh=True)
    v = verdicts(report)
    assert code == 0, out[-3000:]
    assert report["s3_backend"] in ("moto", "minio (binary)", "minio (docker)")
    for clause in report["clauses"]:
        if clause["id"].startswith("KFP"):
            assert clause["verdict"] == "skipped" and "KFP does not run in the local stack" in clause["detail"]
        elif clause["level"] == "core" and clause["mode"] != "promote":
            assert clause["verdict"] == "passed", clause
    assert v["PRM-2"] == v["SRV-5"] == "skipped"
    assert {p.name for p in (evidence / "stack-logs").iterdir()} >= {"mlflow.log", "s3.log", "serving.log"}
    assert "the local Metro stack" in out
    from metro_e2e.conformance import bundle

    kept = bundle.load(results).files
    assert {f"stack-logs/{n}" for n in ("mlflow.log", "s3.log", "serving.log")} <= set(kept), "the stack's logs"
    settings = json.loads(kept["config.json"])["settings"]
    assert settings["url"].split()[0] == report["target"], "the settings the run resolved: the local stack's"
    assert not any(b"minio123" in data for data in kept.values())


def test_promote_mode_passes_prm_2_and_srv_5_on_the_local_stack(tmp_path):
    from .conftest import _require_nginx

    _require_nginx()
    code, report, out = check(tmp_path, "--allow-promote", fresh=True)
    v = verdicts(report)
    assert code == 0, out[-3000:]
    assert v["PRM-2"] == v["SRV-5"] == "passed" and report["mode"] == "promote"
    assert "rows changed" in detail(report, "SRV-5"), "the promoted model must be told apart from the seeded one"


def test_promote_mode_puts_the_previous_latest_back_when_it_ends(metro_seeded_stack, tmp_path):
    storage = Storage(metro_seeded_stack.config())
    cfg = metro_seeded_stack.config()
    before = promotion.inspect_latest(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
    assert before.complete and before.marker["name"] == "iris-model"
    code, report, out = check(
        tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP", "SRV-5", "--allow-promote", fresh=True
    )
    assert verdicts(report)["PRM-2"] == "passed", out[-3000:]
    assert "is put back when the run ends" in detail(report, "PRM-2")
    after = promotion.inspect_latest(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
    assert after.complete, after.problems
    assert after.files == before.files  # the same bytes as before the run
    assert {k: after.marker[k] for k in ("name", "version", "source_uri")} == {
        k: before.marker[k] for k in ("name", "version", "source_uri")
    }
    assert report["leftovers"] == []


def test_results_dir_holds_the_reports_and_log_json_prints_the_report_on_one_marked_line(metro_seeded_stack, tmp_path):
    """What the in-cluster Job runs: the reports land in --results-dir (unless given their own paths) and the log
    carries the JSON report on one line, so `kubectl logs` is enough to read the verdicts."""
    from metro_e2e.conformance.options import REPORT_LINE_MARK

    results = tmp_path / "results" / "nested"
    code, report, out = check(
        tmp_path,
        "--url",
        metro_seeded_stack.gateway_url,
        "--quick",
        "--skip",
        "KFP",
        "--results-dir",
        str(results),
        "--log-json",
        fresh=True,
    )
    assert code == 0, out[-3000:]
    (line,) = [x for x in out.splitlines() if x.startswith(REPORT_LINE_MARK)]
    assert json.loads(line.removeprefix(REPORT_LINE_MARK)) == report
    assert ET.parse(results / "junit.xml").getroot().iter("testcase")
    assert not (results / "report.json").exists(), "--report-json of its own wins over the results folder"
    assert (results / "evidence").is_dir()
    assert out.index("GW-1") < out.index(REPORT_LINE_MARK), "the table first, then the marked line"


def test_progress_jsonl_gives_one_json_object_per_clause_as_it_ends(metro_seeded_stack, tmp_path):
    """Besides the human line, one JSON object per clause (id, verdict, seconds), flushed as each clause ends: what
    a CI log or a dashboard follows during a long run; they agree with the report written at the end."""
    code, report, out = check(
        tmp_path, "--url", metro_seeded_stack.gateway_url, "--quick", "--skip", "KFP", "--progress", "jsonl", fresh=True
    )
    assert code == 0, out[-3000:]
    objects = [json.loads(line) for line in out.splitlines() if line.startswith('{"id": ')]
    assert [o["id"] for o in objects] == [c["id"] for c in report["clauses"]], "one per clause, in the run's order"
    by_id = {c["id"]: c for c in report["clauses"]}
    for o in objects:
        assert set(o) == {"id", "verdict", "seconds"}
        assert (o["verdict"], o["seconds"]) == (by_id[o["id"]]["verdict"], by_id[o["id"]]["duration_s"])
    assert out.index(objects[0]["id"]) < out.index('{"id": '), "the human line comes first"
