"""Faults on a disposable stack: the error is clear, bounded in time, and latest/ is left as it was."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests

from metro_e2e._poll import NotYet, PollTimeout, poll
from metro_e2e.errors import EndpointUnreachable
from metro_e2e.promotion import copy_to_latest, inspect_latest
from metro_e2e.storage import Storage

from .conftest import train_step_argv


def _runs(stack, experiment: str) -> int:
    base = stack.gateway_url + "/mlflow/api/2.0/mlflow"
    exp = requests.get(f"{base}/experiments/get-by-name", params={"experiment_name": experiment}, timeout=5)
    if exp.status_code != 200:
        return 0
    runs = requests.post(
        f"{base}/runs/search", json={"experiment_ids": [exp.json()["experiment"]["experiment_id"]]}, timeout=5
    )
    return len(runs.json().get("runs", []))


def test_mlflow_killed_mid_training_is_a_clear_error_and_latest_is_untouched(metro_disposable_stack, tmp_path):
    stack = metro_disposable_stack
    config = stack.config(experiment=f"metro-e2e-{uuid.uuid4().hex[:8]}")
    storage = Storage(config)
    for rel, body in {"MLmodel": b"flavors: {}", "model.pkl": b"old"}.items():
        storage.put_bytes("ml-models", f"old-model/{rel}", body)
    copy_to_latest(
        storage,
        bucket="ml-models",
        source_prefix="old-model/",
        latest_prefix="latest/",
        record={"name": "old", "version": "1", "source_uri": "s3://ml-models/old-model"},
    )
    before = inspect_latest(storage, bucket="ml-models", latest_prefix="latest/")
    argv = [*train_step_argv(sys.executable, config, tmp_path), "--read_timeout", "5"]
    step = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    with contextlib.suppress(PollTimeout):  # a step still without a run after 60 s meets the fault all the same
        poll(
            lambda: True if _runs(stack, config.experiment) or step.poll() is not None else NotYet("no run yet"),
            timeout_s=60,
            interval_s=0.1,
            what="the training step to start its MLflow run",
        )
    assert step.poll() is None, "the run finished before MLflow could be killed"
    stack.services["mlflow"].stop(grace=0.5)
    started = time.monotonic()
    _, err = step.communicate(timeout=120)
    assert step.returncode != 0
    assert time.monotonic() - started < 60
    last = err.strip().splitlines()[-1]
    assert last.startswith("train: error:") and ("MLflow" in last or "S3" in last), err[-1500:]
    after = inspect_latest(storage, bucket="ml-models", latest_prefix="latest/")
    assert after.files == before.files and after.complete


def test_s3_down_is_a_clear_error_within_the_timeout(metro_disposable_stack):
    metro_disposable_stack.services["s3"].stop()
    config = metro_disposable_stack.config(connect_timeout=2, read_timeout=5)
    started = time.monotonic()
    with pytest.raises(EndpointUnreachable, match="S3 service behind it is not answering"):
        Storage(config).get_bytes("ml-data", "iris/iris.csv")
    assert time.monotonic() - started < 15
