"""The bad-input catalogue: every kind of wrong input a user can give gets one sentence, an exit code, and quickly.

Each case is a real command (``metro-e2e`` or a step CLI, as a user types it) against a real target on
loopback: the healthy local stack, a stack whose gateway is broken on purpose, a plain web server, a port
that accepts connections and never answers, and a closed port. A case passes when

- the exit code is the documented one (docs/errors.md "Bad input"; the table there is compared with this list),
- the last line on stderr is the one error sentence and names the setting to fix (for ``check`` runs whose
  verdicts carry the message, the named clause's detail does), with no traceback anywhere,
- it finishes within 15 s.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from metro_e2e.conformance.catalogue import CLAUSES
from metro_e2e.stack.gateway import Fault

from .conftest import clean_env

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 15.0
CHECK = (str(Path(sys.executable).with_name("metro-e2e")), "check")
PIPELINE = (str(Path(sys.executable).with_name("metro-e2e")), "pipeline")
SPLIT_OUT = tuple(
    a for n in ("train_X", "test_X", "train_y", "test_y") for a in (f"--output_dataset_{n}", f"{{tmp}}/{n}.csv")
)


def step(name: str) -> tuple[str, ...]:
    return (sys.executable, "-m", f"metro_e2e.steps.{name}")


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    exit: int
    says: tuple[str, ...]  # fragments of the one sentence: what is wrong, the setting, the fix
    env: dict = field(default_factory=dict)
    clause: str | None = None  # the message is this clause's verdict detail in the JSON report


TRAIN_IN = tuple(
    a for n in ("train_X", "train_y", "test_X", "test_y") for a in (f"--dataset_{n}", f"{{split}}/{n}.csv")
)

CASES = [
    Case(
        "url-refused",
        (*CHECK, "--url", "{closed}"),
        1,
        ("connection refused: nothing listens there", "--url / METRO_URL"),
    ),
    Case(
        "url-unresolvable",
        (*CHECK, "--url", "http://metro-gateway.invalid"),
        1,
        ("'metro-gateway.invalid' does not resolve", "--url / METRO_URL"),
    ),
    Case(
        "url-silent",
        (*CHECK, "--url", "{silent}"),
        1,
        ("connected, but no answer within 2 s (METRO_READ_TIMEOUT)", "--url / METRO_URL"),
        env={"METRO_READ_TIMEOUT": "2"},
    ),
    Case("url-https-on-http", (*CHECK, "--url", "{gw_https}"), 1, ("the TLS handshake failed", "use http://")),
    Case("url-with-path", (*CHECK, "--url", "{gw}/mlflow"), 2, ("not a path ('/mlflow')", "--url")),
    Case(
        "url-no-scheme",
        step("upload_data"),
        2,
        ("METRO_URL", "expected a URL starting with http:// or https://"),
        env={"METRO_URL": "metro-gateway.local"},
    ),
    Case(
        "not-a-metro-gateway",
        (*CHECK, "--url", "{plain}", "--quick"),
        1,
        ("does not look like a Metro gateway", "--url / METRO_URL"),
    ),
    Case(
        "s3-wrong-access-key",
        (*step("load_data"), "--url", "{gw}", *SPLIT_OUT),
        5,
        ("refused the credentials", "METRO_S3_ACCESS_KEY"),
        env={"METRO_S3_ACCESS_KEY": "not-the-key"},
    ),
    Case(
        "s3-wrong-access-key-check",
        (*CHECK, "--url", "{gw}", "--quick"),
        1,
        ("refused the credentials", "METRO_S3_ACCESS_KEY"),
        env={"METRO_S3_ACCESS_KEY": "not-the-key"},
        clause="S3-1",
    ),
    Case(
        "absent-bucket",
        (*step("load_data"), "--url", "{gw}", "--data_bucket", "metro-e2e-absent", *SPLIT_OUT),
        6,
        ("bucket 'metro-e2e-absent' does not exist", "METRO_DATA_BUCKET"),
    ),
    Case(
        "absent-dataset",
        (*step("load_data"), "--url", "{gw}", "--data_key", "metro-e2e/absent/iris.csv", *SPLIT_OUT),
        6,
        ("no such object", "METRO_DATA_KEY", "upload_data"),
    ),
    Case(
        "mlflow-answers-html",
        (*step("train"), *TRAIN_IN, "--url", "{faulty}"),
        7,
        ("answered an HTML page", "METRO_TRACKING_URI"),
    ),
    Case(
        "mlflow-answers-html-check",
        (*CHECK, "--url", "{faulty}", "--quick"),
        1,
        ("an HTML page", "/mlflow route", "METRO_TRACKING_URI"),
        clause="MLF-1",
    ),
    Case(
        "serving-answers-non-json",
        (*CHECK, "--url", "{faulty}", "--quick"),
        1,
        ("without a JSON 'predictions' field", "METRO_SERVING_URL"),
        clause="SRV-1",
    ),
    Case(
        "promote-unknown-version",
        (*step("promote"), "--url", "{gw}", "--model_name", "metro-e2e-absent-model", "--version", "999"),
        7,
        ("metro-e2e-absent-model", "--model_name / METRO_MODEL_NAME and --version"),
    ),
    Case(
        "pipeline-not-yaml",
        (*PIPELINE, "check", "{tmp}/bad.yaml"),
        3,
        ("is not valid YAML at line 1", "metro-e2e pipeline compile"),
    ),
    Case(
        "pipeline-not-kfp",
        (*PIPELINE, "check", "{tmp}/configmap.yaml"),
        3,
        ("is not a compiled KFP v2 pipeline", "metro-e2e pipeline compile"),
    ),
    Case(
        "pipeline-missing",
        (*PIPELINE, "run-local", "{tmp}/absent.yaml"),
        3,
        ("does not exist", "metro-e2e pipeline compile"),
    ),
    Case(
        "unknown-clause-id",
        (*CHECK, "--url", "{gw}", "--skip", "XYZ-9"),
        2,
        ("--skip XYZ-9 names no clause or component", "GW-1"),
    ),
    Case(
        "report-unwritable",
        (*CHECK, "--url", "{gw}", "--report-json", "/proc/metro-e2e/report.json"),
        2,
        ("cannot write --report-json", "choose a writable path"),
    ),
    Case(
        "results-dir-unwritable",
        (*CHECK, "--url", "{gw}", "--results-dir", "/proc/metro-e2e/results"),
        2,
        ("--results-dir '/proc/metro-e2e/results' cannot be made", "give a folder this user can write"),
    ),
    Case(
        "kfp-backend-unknown",
        (*CHECK, "--url", "{gw}", "--kfp-backend", "2.9"),
        2,
        ("--kfp-backend '2.9' is not one metro-e2e knows", "give one of 2.4.0, sdk"),
    ),
    Case(
        "evidence-dir-unwritable",
        (*CHECK, "--url", "{gw}", "--evidence-dir", "/proc/metro-e2e/evidence"),
        2,
        ("--evidence-dir '/proc/metro-e2e/evidence' cannot be made", "give a folder this user can write"),
    ),
    Case(
        "bundle-unwritable",
        (*CHECK, "--url", "{gw}", "--bundle", "/proc/metro-e2e/run.tar.gz"),
        2,
        ("cannot write --bundle '/proc/metro-e2e/run.tar.gz'", "choose a writable path"),
    ),
    Case(
        "baseline-missing",
        (*CHECK, "--url", "{gw}", "--baseline", "{tmp}/last-good.tar.gz"),
        2,
        ("--baseline: ", "last-good.tar.gz' does not exist", "give a bundle (check --bundle) or a JSON report"),
    ),
    Case(
        "baseline-not-a-run",
        (*CHECK, "--url", "{gw}", "--baseline", "{tmp}/bad.yaml"),
        2,
        ("--baseline: ", "bad.yaml is not JSON", "give a report metro-e2e check wrote (--report-json) or a bundle"),
    ),
    Case(
        "report-not-a-run",
        (str(Path(sys.executable).with_name("metro-e2e")), "report", "{tmp}/configmap.yaml"),
        3,
        ("configmap.yaml is not JSON", "give a report metro-e2e check wrote (--report-json) or a bundle"),
    ),
    Case(
        "diff-ratio-not-positive",
        (
            str(Path(sys.executable).with_name("metro-e2e")),
            "diff",
            "{tmp}/a.json",
            "{tmp}/b.json",
            "--slower-ratio",
            "0",
        ),
        2,
        ("--slower-ratio 0 is not a positive number", "give a positive number, or leave it out for 2"),
    ),
    Case(
        "conflicting-options",
        (*CHECK, "--url", "{gw}", "--quick", "--allow-promote"),
        2,
        ("--quick checks only", "drop --quick"),
    ),
    Case(
        "restart-without-promote",
        (*CHECK, "--url", "{gw}", "--restart-serving", "true"),
        2,
        ("--restart-serving is only used by SRV-5", "add --allow-promote"),
    ),
    Case(
        "timeout-malformed",
        (*CHECK, "--url", "{gw}"),
        2,
        ("METRO_READ_TIMEOUT", "expected a number of seconds"),
        env={"METRO_READ_TIMEOUT": "abc"},
    ),
    Case(
        "input-file-missing",
        (*step("train"), *(a.replace("{split}/train_X", "{tmp}/absent_X") for a in TRAIN_IN), "--url", "{gw}"),
        3,
        ("absent_X.csv' does not exist", "check the path passed to the step"),
    ),
    Case(
        "csv-without-target",
        (*step("upload_data"), "--url", "{gw}", "--input_csv", "{tmp}/notarget.csv"),
        3,
        ("has no 'target' column", "must be named 'target'"),
    ),
    Case(
        "pytest-url-malformed",
        (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "metro_e2e.conformance.suite"),
        4,  # pytest's own exit code for a usage error
        ("metro-gateway.local", "METRO_URL"),
        env={"METRO_URL": "metro-gateway.local"},
    ),
    Case(
        "no-stack-recorded",
        (str(Path(sys.executable).with_name("metro-e2e")), "stack", "down"),
        11,
        ("no running stack is recorded", "metro-e2e stack up"),
    ),
]


def _serve_plain(folder: Path) -> ThreadingHTTPServer:
    (folder / "index.html").write_text("<html><body>It works!</body></html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def targets(metro_stack, tmp_path_factory):
    """Every target the cases name, on loopback."""
    from metro_e2e.stack import LocalStack, StackOptions

    faults = (
        Fault(
            path="^/mlflow(/|$)",
            status=200,
            body="<!DOCTYPE html><html><body>Log in to continue</body></html>",
            content_type="text/html",
            why="a login page where MLflow should be",
        ),
        Fault(
            path="^/mlflow-model/invocations$",
            status=200,
            body="OK",
            content_type="text/plain",
            why="serving answers plain text",
        ),
    )
    plain = _serve_plain(tmp_path_factory.mktemp("plain"))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections into the backlog, never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    split = tmp_path_factory.mktemp("split")
    from metro_e2e import data

    data.write_split(data.split(data.iris_frame()), {n: str(split / f"{n}.csv") for n in data.SPLIT_NAMES})
    with LocalStack(StackOptions(faults=faults, run_dir=tmp_path_factory.mktemp("faulty-stack"))) as faulty:
        yield {
            "gw": metro_stack.gateway_url,
            "gw_https": metro_stack.gateway_url.replace("http://", "https://"),
            "faulty": faulty.gateway_url,
            "plain": f"http://127.0.0.1:{plain.server_address[1]}",
            "silent": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "closed": f"http://127.0.0.1:{closed.getsockname()[1]}",
            "split": str(split),
        }
    plain.shutdown()
    silent.close()
    closed.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_sentence_with_its_exit_code(case, targets, tmp_path, record_property):
    """And a ``check`` still leaves both reports a CI job publishes: every clause has a verdict (``error`` with the
    sentence when the check could not start)."""
    (tmp_path / "bad.yaml").write_text(": : [\n")
    (tmp_path / "configmap.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    (tmp_path / "notarget.csv").write_text("a,b\n1,2\n")
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    argv = [a.format(tmp=tmp_path, **targets) for a in case.argv]
    is_check = tuple(case.argv[:2]) == CHECK
    if is_check:
        argv += ["--junit-xml", str(junit)] + ([] if "--report-json" in argv else ["--report-json", str(report)])
    started = time.monotonic()
    done = subprocess.run(argv, env=clean_env(**case.env), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    record_property("seconds", f"{elapsed:.1f}")
    shown = f"exit {done.returncode}\nstdout:\n{done.stdout[-1500:]}\nstderr:\n{done.stderr[-1500:]}"
    assert done.returncode == case.exit, shown
    assert "Traceback" not in done.stdout + done.stderr, shown
    if case.clause:
        clauses = {c["id"]: c for c in json.loads(report.read_text())["clauses"]}
        message = clauses[case.clause]["detail"]
        assert clauses[case.clause]["verdict"] == "failed", message
    else:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines, shown
        message = lines[-1]
        assert re.match(r"^(metro-e2e|[a-z_]+|ERROR): ", message), shown
    record_property("message", message)
    for fragment in case.says:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert elapsed <= LIMIT_S, f"{case.id} took {elapsed:.1f} s (limit {LIMIT_S:g} s)"
    if is_check:
        _assert_reports(case, report, junit)


def _assert_reports(case: Case, report: Path, junit: Path) -> None:
    schema = json.loads((ROOT / "metro_e2e" / "conformance" / "report.schema.json").read_text())
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == len(CLAUSES) and all(c.get("name") for c in cases)
    if case.id == "report-unwritable":
        assert all(c.find("error") is not None for c in cases)  # the JSON path is the bad input; JUnit says why
        return
    written = json.loads(report.read_text())
    jsonschema.validate(written, schema)
    verdicts = {c["id"]: c for c in written["clauses"]}
    if case.exit == 2:  # stopped before it started: no clause has a verdict, each says why
        assert all(c["verdict"] == "error" and c["detail"].startswith("not run: ") for c in verdicts.values())
        assert case.says[0] in verdicts["GW-1"]["detail"]
    elif case.id.startswith("url-"):  # nothing answers there: GW-1 failed, nothing else ran
        assert verdicts["GW-1"]["verdict"] == "failed"
        assert {c["verdict"] for i, c in verdicts.items() if i != "GW-1"} <= {"blocked", "skipped"}


def test_errors_doc_documents_every_case():
    """docs/errors.md's "Bad input" table lists exactly these cases with these exit codes."""
    text = (ROOT / "docs" / "errors.md").read_text()
    section = text.split("\n## Bad input\n", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \|.*\| (\d+) \|$", section, re.MULTILINE))
    assert rows == {c.id: str(c.exit) for c in CASES}
    assert len(CASES) >= 15
