"""`metro-e2e check` against the local stack, healthy and deliberately broken.

Each broken platform must fail exactly the clause it breaks and block that
clause's dependents; the healthy one passes. One seeded stack serves the
module: each test breaks it, checks, and repairs it in ``finally``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from metro_e2e import data, promotion, training
from metro_e2e.storage import Storage

SCHEMA = Path(__file__).resolve().parents[2] / "metro_e2e" / "conformance" / "report.schema.json"


def check(tmp_path, *args: str, env: dict | None = None) -> tuple[int, dict, str]:
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "metro_e2e.cli", "check", "--report-json", str(report), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    assert report.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    return done.returncode, json.loads(report.read_text()), done.stdout + done.stderr


def verdicts(report: dict) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in report["clauses"]}


def detail(report: dict, clause_id: str) -> str:
    return next(c["detail"] for c in report["clauses"] if c["id"] == clause_id)


def test_healthy_local_stack_passes_and_reports_validate(metro_seeded_stack, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    junit = tmp_path / "junit.xml"
    code, report, out = check(
        tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP", "--junit-xml", str(junit)
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


def test_wrong_credentials_fail_s3_1_and_block_its_dependents(metro_seeded_stack, tmp_path):
    code, report, _ = check(
        tmp_path,
        "--url",
        metro_seeded_stack.gateway_url,
        "--skip",
        "KFP",
        env={"METRO_S3_ACCESS_KEY": "not-minio", "METRO_S3_SECRET_KEY": "wrong-secret-7"},
    )
    v = verdicts(report)
    assert code == 1
    assert v["S3-1"] == "failed" and "InvalidAccessKeyId" in detail(report, "S3-1")
    assert {v[c] for c in ("S3-2", "S3-3", "S3-4", "S3-5", "MLF-4", "MLF-5", "PRM-1", "SRV-4")} == {"blocked"}
    assert v["GW-1"] == v["MLF-1"] == v["SRV-1"] == "passed"
    assert "wrong-secret-7" not in json.dumps(report)


def test_unreachable_gateway_fails_gw_1_within_the_timeout(tmp_path):
    """The live tier (pytest) gives GW-1's verdict; ``metro-e2e check`` stops before it, in one sentence."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    report_path = tmp_path / "live.json"
    live = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--pyargs",
            "metro_e2e.conformance.suite",
            "--metro-url",
            url,
            "--metro-quick",
            "--metro-report-json",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    report = json.loads(report_path.read_text())
    v = verdicts(report)
    assert live.returncode == 1 and v["GW-1"] == "failed", live.stdout[-2000:]
    assert "connection refused" in detail(report, "GW-1")
    assert {v[c] for c in ("S3-1", "MLF-1", "KFP-1", "SRV-1")} == {"blocked"}
    assert all(c["duration_s"] < 15 for c in report["clauses"])

    done = subprocess.run(
        [sys.executable, "-m", "metro_e2e.cli", "check", "--url", url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 4 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "connection refused" in done.stderr and "--url / METRO_URL" in done.stderr


def test_missing_bucket_fails_s3_2(metro_seeded_stack, tmp_path):
    storage = Storage(metro_seeded_stack.config())
    storage.delete_prefix("ml-data", "")
    storage.client.delete_bucket(Bucket="ml-data")
    try:
        code, report, _ = check(tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP")
    finally:
        storage.create_bucket("ml-data")
    v = verdicts(report)
    assert code == 1 and v["S3-2"] == "failed" and "missing: ml-data" in detail(report, "S3-2")
    assert v["S3-3"] == v["MLF-4"] == v["PRM-1"] == "blocked"


def test_empty_latest_fails_prm_1_and_blocks_srv_4(metro_seeded_stack, tmp_path):
    storage = Storage(metro_seeded_stack.config())
    saved = {k: storage.get_bytes("ml-models", k) for k in storage.list_keys("ml-models", "latest/")}
    storage.delete_keys("ml-models", list(saved))
    try:
        code, report, _ = check(tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP")
    finally:
        for key, body in saved.items():
            storage.put_bytes("ml-models", key, body)
    v = verdicts(report)
    assert code == 1 and v["PRM-1"] == "failed" and "nothing there" in detail(report, "PRM-1")
    assert v["SRV-4"] == "blocked" and v["SRV-1"] == "passed"


def test_stale_model_fails_srv_4(metro_seeded_stack, tmp_path):
    config = metro_seeded_stack.config(experiment="stale", model_name="stale-model")
    frame = data.iris_frame()
    frame["target"] = (frame["target"] + 1) % 3  # a model that disagrees with the served one on every row
    result = training.train(config, data.split(frame))
    try:
        promotion.promote(config, version=result.version)  # promoted, but serving is not restarted
        code, report, _ = check(tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP")
    finally:
        metro_seeded_stack.seed_model()
    v = verdicts(report)
    assert code == 1 and v["SRV-4"] == "failed" and "stale" in detail(report, "SRV-4")
    assert v["PRM-1"] == v["SRV-1"] == "passed"


def test_gateway_without_the_redirect_fails_srv_2(metro_seeded_stack, tmp_path):
    code, report, _ = _broken(metro_seeded_stack, tmp_path, serving_redirect=False)
    v = verdicts(report)
    assert code == 1 and v["SRV-2"] == "failed" and "HTTP 404" in detail(report, "SRV-2")
    assert v["SRV-1"] == "passed"


def test_gateway_without_host_routing_fails_srv_1(metro_seeded_stack, tmp_path):
    code, report, _ = _broken(metro_seeded_stack, tmp_path, serving_route=False)
    v = verdicts(report)
    assert code == 1 and v["SRV-1"] == "failed"
    assert {v[c] for c in ("SRV-2", "SRV-3", "SRV-4", "SRV-6")} == {"blocked"}


class _Answers500OnBadInput(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.end_headers()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            parsed = json.loads(body)
            rows = parsed["dataframe_split"]["data"] if "dataframe_split" in parsed else parsed["dataframe_records"]
            answer, status = json.dumps({"predictions": [0] * len(rows)}).encode(), 200
        except (ValueError, KeyError, TypeError):
            answer, status = b'{"error": "internal"}', 500
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_model_server_answering_500_fails_srv_3(metro_seeded_stack, tmp_path):
    metro_seeded_stack.serving.stop()
    server = ThreadingHTTPServer(("127.0.0.1", metro_seeded_stack.serving.port), _Answers500OnBadInput)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, report, _ = check(tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP")
    finally:
        server.shutdown()
        server.server_close()
        metro_seeded_stack.serving.start()
    v = verdicts(report)
    assert code == 1 and v["SRV-3"] == "failed" and "HTTP 500" in detail(report, "SRV-3")
    assert v["SRV-1"] == "passed"


def test_latency_budget_warns_and_fails_under_strict(metro_seeded_stack, tmp_path):
    args = ["--url", metro_seeded_stack.gateway_url, "--quick", "--skip", "KFP"]
    code, report, _ = check(tmp_path, *args)
    assert code == 0 and verdicts(report)["SRV-6"] == "skipped"  # not part of --quick
    full = ["--url", metro_seeded_stack.gateway_url, "--skip", "KFP", "S3", "MLF", "PRM", "--latency-budget-ms", "0.01"]
    code, report, _ = check(tmp_path, *full)
    assert code == 0 and verdicts(report)["SRV-6"] == "warned" and "p95" in detail(report, "SRV-6")
    code, report, _ = check(tmp_path, *full, "--strict")
    assert code == 1 and verdicts(report)["SRV-6"] == "failed"


def _broken(stack, tmp_path, *args, env=None, **gateway_changes):
    """Check ``stack`` with the gateway reconfigured by ``gateway_changes``, then restore it."""
    saved = {k: getattr(stack.options, k) for k in gateway_changes}
    stack.reconfigure_gateway(**gateway_changes)
    try:
        return check(tmp_path, "--url", stack.gateway_url, "--skip", "KFP", *args, env=env)
    finally:
        stack.reconfigure_gateway(**saved)


def test_unreadable_namespace_objects_fail_s3_3(metro_seeded_stack, tmp_path):
    from metro_e2e.stack.gateway import Fault

    fault = Fault(path=r"^/ml-data/metro-e2e/", status=500, body="broken", methods=("GET",), why="reads fail")
    code, report, _ = _broken(metro_seeded_stack, tmp_path, faults=(fault,))
    assert code == 1 and verdicts(report)["S3-3"] == "failed" and verdicts(report)["S3-2"] == "passed"


def test_anonymous_access_allowed_fails_s3_4(metro_seeded_stack, tmp_path):
    code, report, _ = _broken(metro_seeded_stack, tmp_path, enforce_s3_auth=False)
    v = verdicts(report)
    assert code == 1 and v["S3-4"] == "failed" and "allowed: list ml-models" in detail(report, "S3-4")


def test_missing_ui_assets_fail_mlf_2(metro_seeded_stack, tmp_path):
    from metro_e2e.stack.gateway import Fault

    fault = Fault(path=r"^/mlflow/static-files/", status=404, why="UI assets not routed")
    code, report, _ = _broken(metro_seeded_stack, tmp_path, faults=(fault,))
    assert code == 1 and verdicts(report)["MLF-2"] == "failed" and "-> 404" in detail(report, "MLF-2")


def test_version_skew_fails_mlf_3_naming_both_versions(metro_seeded_stack, tmp_path):
    from metro_e2e.stack.gateway import Fault

    fault = Fault(path=r"^/mlflow/version$", status=200, body="1.30.0", why="an MLflow 1.x server")
    code, report, _ = _broken(metro_seeded_stack, tmp_path, faults=(fault,))
    v = verdicts(report)
    assert code == 1 and v["MLF-3"] == "failed" and v["MLF-4"] == v["MLF-5"] == "blocked"
    assert "server 1.30.0" in detail(report, "MLF-3") and "client 2." in detail(report, "MLF-3")


def test_model_upload_refused_fails_mlf_5(metro_seeded_stack, tmp_path):
    from metro_e2e.stack.gateway import Fault

    fault = Fault(
        path=r"^/ml-models/metro-e2e/",
        status=403,
        methods=("PUT", "POST"),
        why="artifacts cannot be written",
        body='<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>',
    )
    code, report, _ = _broken(metro_seeded_stack, tmp_path, faults=(fault,))
    v = verdicts(report)
    assert code == 1 and v["MLF-5"] == "failed" and v["MLF-4"] == "passed"


def test_latest_not_writable_fails_prm_2_and_leaves_latest_alone(metro_seeded_stack, tmp_path):
    from metro_e2e.stack.gateway import Fault

    storage = Storage(metro_seeded_stack.config())
    before = promotion.inspect_latest(storage, bucket="ml-models", latest_prefix="latest/")
    fault = Fault(
        path=r"^/ml-models/latest/",
        status=403,
        methods=("PUT",),
        why="latest/ cannot be written",
        body='<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>',
    )
    code, report, _ = _broken(metro_seeded_stack, tmp_path, "--allow-promote", "--skip", "SRV-5", faults=(fault,))
    v = verdicts(report)
    assert code == 1 and v["PRM-2"] == "failed" and v["PRM-1"] == "passed"
    assert promotion.inspect_latest(storage, bucket="ml-models", latest_prefix="latest/").files == before.files


def test_kfp_missing_fails_kfp_1_when_not_skipped(metro_seeded_stack, tmp_path):
    code, report, _ = check(tmp_path, "--url", metro_seeded_stack.gateway_url, "--quick")
    v = verdicts(report)
    assert code == 1 and v["KFP-1"] == "failed" and "503" in detail(report, "KFP-1")


def test_mlflow3_without_allowed_hosts_fails_mlf_1(tmp_path_factory, tmp_path):
    from metro_e2e.stack import LocalStack, StackOptions

    from .conftest import _require_nginx

    _require_nginx()
    options = StackOptions(mlflow_server="3.x-no-allowed-hosts", run_dir=tmp_path_factory.mktemp("no-hosts"))
    with LocalStack(options) as stack:
        config, proxy_env = stack.hostname_client()  # the gateway under a DNS name, as on a cluster
        code, report, _ = check(tmp_path, "--url", config.url, "--skip", "KFP", "SRV", "PRM", env=proxy_env)
    v = verdicts(report)
    assert code == 1 and v["GW-1"] == "passed" and v["MLF-1"] == "failed"
    assert "HTTP 403" in detail(report, "MLF-1") and "--allowed-hosts" in detail(report, "MLF-1")
    assert {v[c] for c in ("MLF-2", "MLF-3", "MLF-4", "MLF-5")} == {"blocked"}


def test_artifacts_not_in_s3_fail_mlf_4(tmp_path_factory, tmp_path):
    from metro_e2e.stack import LocalStack, StackOptions

    from .conftest import _require_nginx

    _require_nginx()
    options = StackOptions(mlflow_artifact_root="mlflow-artifacts:/", run_dir=tmp_path_factory.mktemp("proxied"))
    with LocalStack(options) as stack:
        code, report, _ = check(tmp_path, "--url", stack.gateway_url, "--skip", "KFP", "SRV", "PRM")
    v = verdicts(report)
    assert code == 1 and v["MLF-4"] == "failed" and v["MLF-5"] == "blocked"
    assert "mlflow-artifacts:/" in detail(report, "MLF-4")


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
    evidence = tmp_path / "evidence"
    code, report, out = check(tmp_path, "--evidence-dir", str(evidence))
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


def test_promote_mode_passes_prm_2_and_srv_5_on_the_local_stack(tmp_path):
    from .conftest import _require_nginx

    _require_nginx()
    code, report, out = check(tmp_path, "--allow-promote")
    v = verdicts(report)
    assert code == 0, out[-3000:]
    assert v["PRM-2"] == v["SRV-5"] == "passed" and report["mode"] == "promote"
    assert "rows changed" in detail(report, "SRV-5"), "the promoted model must be told apart from the seeded one"


def test_a_restart_that_does_nothing_fails_srv_5(metro_seeded_stack, tmp_path):
    try:
        code, report, _ = check(
            tmp_path,
            "--url",
            metro_seeded_stack.gateway_url,
            "--skip",
            "KFP",
            "--allow-promote",
            "--restart-serving",
            "true",
            "--restart-timeout",
            "8",
        )
    finally:
        metro_seeded_stack.seed_model()  # put the stack's own model back and serve it
    v = verdicts(report)
    assert code == 1 and v["PRM-2"] == "passed" and v["SRV-5"] == "failed"
    assert "still differ" in detail(report, "SRV-5")


def test_promote_mode_puts_the_previous_latest_back_when_it_ends(metro_seeded_stack, tmp_path):
    storage = Storage(metro_seeded_stack.config())
    cfg = metro_seeded_stack.config()
    before = promotion.inspect_latest(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
    assert before.complete and before.marker["name"] == "iris-model"
    code, report, out = check(
        tmp_path, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP", "SRV-5", "--allow-promote"
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
