"""The promotion and serving clauses fail on each realistic way their promise breaks, and only they fail.

The seeded stack (iris-model promoted to ``latest/`` and served; see ``SeededStacks``); each test breaks it, runs
``metro-e2e check`` and repairs it: ``latest/`` is put back byte for byte, or the stack is seeded again.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from metro_e2e import data, promotion, training
from metro_e2e.stack.gateway import Fault
from metro_e2e.storage import Storage

from .checking import broken_gateway, check, detail, expect_outcome, verdicts
from .conftest import objects

S3_DENIED = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>'


def _check(stack, tmp_path, *args, env=None):
    return check(tmp_path, "--url", stack.gateway_url, "--skip", "KFP", *args, env=env)


@pytest.fixture
def metro_latest(metro_seeded_stack):
    """``latest/`` as the module's stack holds it; put back byte for byte after the test, and served again unless
    the model server that loaded it before the test still runs (it serves what it downloaded at its start)."""
    storage = Storage(metro_seeded_stack.config())
    saved = objects(storage, "ml-models", "latest/")
    serving = metro_seeded_stack.serving.service
    yield storage
    storage.delete_keys("ml-models", [k for k in storage.list_keys("ml-models", "latest/") if k not in saved])
    for key, body in saved.items():
        storage.put_bytes("ml-models", key, body)
    for bucket in ("ml-models", "ml-data"):
        storage.delete_prefix(bucket, "metro-e2e/")
    storage.delete_prefix("ml-models", promotion.STAGING_ROOT)
    if serving is None or metro_seeded_stack.serving.service is not serving or not serving.running():
        metro_seeded_stack.restart_serving()


# -- PRM-1 ------------------------------------------------------------------------------------------------------------
def test_empty_latest_fails_prm_1(metro_seeded_stack, metro_latest, tmp_path):
    metro_latest.delete_prefix("ml-models", "latest/")
    code, report, _ = _check(metro_seeded_stack, tmp_path)
    assert code == 1
    expect_outcome(report, {"PRM-1": r"a model under s3://ml-models/latest/; got nothing there"})


def test_a_file_mlmodel_references_missing_fails_prm_1(metro_seeded_stack, metro_latest, tmp_path):
    metro_latest.delete_keys("ml-models", ["latest/model.pkl"])
    code, report, _ = _check(metro_seeded_stack, tmp_path)
    assert code == 1
    expect_outcome(report, {"PRM-1": r"every file MLmodel references; got missing: model\.pkl"})


def test_a_model_file_that_does_not_load_fails_prm_1(metro_seeded_stack, metro_latest, tmp_path):
    metro_latest.put_bytes("ml-models", "latest/model.pkl", b"not a pickle: truncated by a failed copy")
    code, report, _ = _check(metro_seeded_stack, tmp_path)
    assert code == 1
    expect_outcome(report, {"PRM-1": r"mlflow\.pyfunc\.load_model to load latest/; got \w*(Unpickling|Error)"})


# -- PRM-2 ------------------------------------------------------------------------------------------------------------
def _promote_check(stack, tmp_path, *faults):
    with broken_gateway(stack, faults=faults):
        return _check(stack, tmp_path, "--allow-promote", "--skip", "SRV-5")


def test_latest_not_writable_fails_prm_2_and_leaves_latest_alone(metro_seeded_stack, metro_latest, tmp_path):
    before = promotion.inspect_latest(metro_latest, bucket="ml-models", latest_prefix="latest/")
    fault = Fault(
        path=r"^/ml-models/latest/",
        status=403,
        methods=("PUT",),
        body=S3_DENIED,
        content_type="application/xml",
        why="latest/ cannot be written",
    )
    code, report, _ = _promote_check(metro_seeded_stack, tmp_path, fault)
    assert code == 1
    expect_outcome(report, {"PRM-2": r"to be promoted; got promotion of .* failed during the swap"})
    assert promotion.inspect_latest(metro_latest, bucket="ml-models", latest_prefix="latest/").files == before.files


def test_a_stale_file_left_in_latest_fails_prm_2(metro_seeded_stack, metro_latest, tmp_path):
    """The previous model had a file the new one lacks, and S3 acknowledges the delete without deleting."""
    metro_latest.put_bytes("ml-models", "latest/extra-notes.txt", b"left from the previous model")
    deleted_nothing = '<?xml version="1.0" encoding="UTF-8"?><DeleteResult></DeleteResult>'
    fault = Fault(
        path=r"^/ml-models$", status=200, body=deleted_nothing, methods=("POST",), content_type="application/xml"
    )
    code, report, _ = _promote_check(metro_seeded_stack, tmp_path, fault)
    assert code == 1
    expect_outcome(report, {"PRM-2": r"got at the end latest/ holds files the version lacks: extra-notes\.txt;"})


def test_a_marker_write_that_is_lost_fails_prm_2(metro_seeded_stack, metro_latest, tmp_path):
    """S3 acknowledges the marker's PUT and keeps the old marker: latest/ does not record what it holds."""
    fault = Fault(path=r"^/ml-models/latest/\.metro-e2e-promotion\.json$", status=200, methods=("PUT",))
    code, report, _ = _promote_check(metro_seeded_stack, tmp_path, fault)
    assert code == 1
    expect_outcome(report, {"PRM-2": r"a marker recording metro-e2e-\S+ version 1, not .*changed since promotion"})


def test_a_promotion_readers_cannot_see_in_progress_fails_prm_2(metro_seeded_stack, metro_latest, tmp_path):
    """The promotion's journal is acknowledged but never stored: while the swap runs, a reader finds old and new
    files side by side with nothing telling it the swap is under way, and would load the mix."""
    fault = Fault(path=r"^/ml-models/\.metro-e2e-staging/[^/]+\.journal\.json$", status=200, methods=("PUT",))
    code, report, _ = _promote_check(metro_seeded_stack, tmp_path, fault)
    assert code == 1
    expect_outcome(
        report,
        {"PRM-2": r"got after copying .* with nothing marking the promotion as under way: a reader would load the mix"},
    )


# -- SRV ---------------------------------------------------------------------------------------------------------------
def test_gateway_without_host_routing_fails_srv_1(metro_seeded_stack, tmp_path):
    with broken_gateway(metro_seeded_stack, serving_route=False):
        code, report, _ = _check(metro_seeded_stack, tmp_path)
    assert code == 1
    expect_outcome(
        report, {"SRV-1": r"200 with predictions for a dataframe_split request; got model server .* answered 403"}
    )


def test_gateway_without_the_redirect_fails_srv_2(metro_seeded_stack, tmp_path):
    with broken_gateway(metro_seeded_stack, serving_redirect=False):
        code, report, _ = _check(metro_seeded_stack, tmp_path)
    assert code == 1
    expect_outcome(report, {"SRV-2": r"redirect to .*/mlflow-model/; got HTTP 404"})


def test_model_reachable_without_the_host_header_fails_srv_2(metro_seeded_stack, tmp_path):
    with broken_gateway(metro_seeded_stack, serving_host_required=False):
        code, report, _ = _check(metro_seeded_stack, tmp_path)
    assert code == 1
    expect_outcome(report, {"SRV-2": r"not to reach the model; got HTTP 200 from the model server \(predictions\)"})


class _ModelAnswering500OnBadInput(BaseHTTPRequestHandler):
    """The served model's own predictions for well-formed requests; 500 for anything else (no input validation)."""

    model = None

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.end_headers()

    def do_POST(self):  # noqa: N802
        import pandas as pd

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            parsed = json.loads(body)
            if "dataframe_split" in parsed:
                split = parsed["dataframe_split"]
                frame = pd.DataFrame(split["data"], columns=split["columns"])
            else:
                frame = pd.DataFrame(parsed["dataframe_records"])
            answer, status = json.dumps({"predictions": [int(p) for p in self.model.predict(frame)]}).encode(), 200
        except Exception:  # noqa: BLE001 - the breakage: every bad input is an internal error
            answer, status = b'{"error": "internal"}', 500
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_model_server_answering_500_to_bad_input_fails_srv_3(metro_seeded_stack, metro_latest, tmp_path):
    import tempfile

    import mlflow.pyfunc

    with tempfile.TemporaryDirectory() as folder:
        promotion.download_latest(metro_latest, bucket="ml-models", latest_prefix="latest/", dest=folder)
        _ModelAnswering500OnBadInput.model = mlflow.pyfunc.load_model(folder)
    metro_seeded_stack.serving.stop()
    server = ThreadingHTTPServer(("127.0.0.1", metro_seeded_stack.serving.port), _ModelAnswering500OnBadInput)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, report, _ = _check(metro_seeded_stack, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
        metro_seeded_stack.serving.start()
    assert code == 1
    expect_outcome(report, {"SRV-3": r"never 5xx; got malformed JSON: HTTP 500"})  # SRV-4: the same predictions


def test_stale_model_fails_srv_4(metro_seeded_stack, metro_latest, tmp_path):
    config = metro_seeded_stack.config(experiment="stale", model_name="stale-model")
    frame = data.iris_frame()
    frame["target"] = (frame["target"] + 1) % 3  # a model that disagrees with the served one on every row
    result = training.train(config, data.split(frame))
    promotion.promote(config, version=result.version)  # promoted, but serving is not restarted
    code, report, _ = _check(metro_seeded_stack, tmp_path)
    assert code == 1
    expect_outcome(report, {"SRV-4": r"\d+ differ .* the server may serve a stale model"})


def test_a_restart_that_does_nothing_fails_srv_5(metro_seeded_stack, metro_latest, tmp_path):
    args = ("--allow-promote", "--restart-serving", "true", "--restart-timeout", "8")
    code, report, _ = _check(metro_seeded_stack, tmp_path, *args)
    assert code == 1
    expect_outcome(report, {"SRV-5": r"within 8 s of the restart; got \d+ of 150 predictions still differ"})


def test_a_noop_restart_fails_srv_5_even_when_the_served_model_predicts_like_the_checks(
    metro_seeded_stack, metro_latest, tmp_path
):
    """Seeded the default way, the served model predicts exactly like the check's: SRV-5 promotes a version that
    predicts otherwise before restarting, so a restart that changes nothing cannot pass."""
    metro_seeded_stack.seed_model(split_seed=data.DEFAULT_SEED)
    args = ("--allow-promote", "--restart-serving", "true", "--restart-timeout", "8")
    code, report, _ = _check(metro_seeded_stack, tmp_path, *args)
    assert code == 1
    expect_outcome(report, {"SRV-5": r"within 8 s of the restart; got \d+ of 150 predictions still differ from v2"})


def test_latency_budget_warns_and_fails_under_strict(metro_seeded_stack, tmp_path):
    code, report, _ = _check(metro_seeded_stack, tmp_path, "--quick")
    assert code == 0 and verdicts(report)["SRV-6"] == "skipped"  # not part of --quick
    few = ("--skip", "S3", "MLF", "PRM", "--latency-budget-ms", "0.01")
    code, report, _ = _check(metro_seeded_stack, tmp_path, *few)
    assert code == 0 and verdicts(report)["SRV-6"] == "warned" and "p95" in detail(report, "SRV-6")
    code, report, _ = _check(metro_seeded_stack, tmp_path, *few, "--strict")
    assert code == 1
    expect_outcome(report, {"SRV-6": r"p95 under 0 ms; got p95 \d+ ms"}, warned=())
