"""The local stack's MLflow 2.x server runs MLflow's gunicorn in the CLI's process (stack/mlflow_serve.py).

These start the platform's server version from its cached environment without the rest of a stack: the server
answers and stores what it is sent, its worker is forked from the launcher (one MLflow import, no second
process tree), and a store MLflow cannot open still stops it at start, as ``mlflow server`` does.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from metro_e2e.stack import mlflow_server
from metro_e2e.stack.process import free_port, release_ports

PROFILE = mlflow_server.PROFILES[mlflow_server.DEFAULT_PROFILE]


@pytest.fixture
def service(tmp_path):
    port = free_port()
    service = mlflow_server.mlflow_service(
        PROFILE,
        port=port,
        data_dir=tmp_path / "mlflow",
        log_dir=tmp_path,
        s3_endpoint="http://127.0.0.1:9",
        access_key="k",
        secret_key="s",
    )
    yield service
    service.stop(grace=2.0)
    release_ports([port])


def test_the_platform_profile_runs_in_one_process_tree(service):
    assert PROFILE.in_process
    assert Path(service.command[2]).name == "mlflow_serve.py", service.command


def test_the_server_answers_and_keeps_what_it_is_sent_from_a_forked_worker(service):
    service.start()
    mlflow_server.wait_mlflow(service)
    api = service.url + "/api/2.0/mlflow"
    created = requests.post(f"{api}/experiments/create", json={"name": "one-process"}, timeout=10)
    assert created.status_code == 200, created.text
    found = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": "one-process"}, timeout=10)
    assert found.json()["experiment"]["experiment_id"] == created.json()["experiment_id"]
    children = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(service.pid)], capture_output=True, text=True, timeout=10
    ).stdout.splitlines()
    assert len(children) == 1, children  # gunicorn's one worker, forked from the launcher: no CLI, no exec
    assert "mlflow_serve.py" in children[0], children
    log = service.log_path.read_text()
    assert "=== Running command (in this process) '" in log and " -m gunicorn " in log, log[-2000:]


def _outcome(argv: list[str], env: dict, cwd) -> tuple[int, str]:
    """Exit code and output of a server command expected to end by itself (its process group killed if not)."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        return -1, "still running after 60 s: " + out[-2000:]
    return proc.returncode, out


@pytest.mark.parametrize(
    ("case", "code", "says"),
    [("unknown-schema", 1, "deadbeef0000"), ("unknown-option", 2, "Error: No such option '--no-such-option'.")],
)
def test_it_ends_as_mlflow_server_does_when_it_cannot_start(service, tmp_path, case, code, says):
    """The CLI's own option handling and store initialisation run first (PLATFORM.md breakage 5 is such a failure
    at start): the same exit code and message as `mlflow server` with the same arguments."""
    import sqlite3

    command = list(service.command)
    if case == "unknown-schema":
        store = tmp_path / "unknown-schema.db"
        with sqlite3.connect(store) as db:  # a schema revision this MLflow does not know
            db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            db.execute("INSERT INTO alembic_version VALUES ('deadbeef0000')")
        at = command.index("--backend-store-uri")
        command[at + 1] = f"sqlite:///{store}"
    else:
        command.append("--no-such-option")
    env_root = mlflow_server.server_env(PROFILE)
    env = {**os.environ, **service.env}
    launcher = _outcome(command, env, tmp_path)
    cli = _outcome([str(env_root / "bin" / "mlflow"), "server", *command[3:]], env, tmp_path)
    assert (launcher[0], says in launcher[1]) == (code, True), launcher[1][-2000:]
    assert (cli[0], says in cli[1]) == (code, True), cli[1][-2000:]
