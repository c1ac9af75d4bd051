"""MLflow client/server pairs through the gateway: the supported ones work, the unsupported one fails clearly.

| client \\ server | 2.20.3 (platform) | 3.17.2 |
| 2.x (suite default) | supported | supported |
| 3.x | refused: no logged-models API | supported (MLflow 3 layout) |

``test_this_client_with_each_server`` uses the MLflow client of the environment it runs in: the default
environment (2.x) and ``tox -e mlflow3`` (3.x) each run it against both servers, and CI runs both. The other
tests reach the 3.x client through the 3.x server's own environment, so the default run covers all four pairs.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import mlflow
import pytest
import requests

from metro_e2e import data, promotion, registry, training
from metro_e2e.errors import AuthError, TrackingError
from metro_e2e.stack.mlflow_server import PROFILES, server_env

from .conftest import train_step_argv

# off the default run (CI runs `pytest -n 2 -m slow`): MLflow 3.x servers for the client/server matrix (about 90 s); tox's mlflow2 and mlflow3 run it too
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _stack(tmp_path_factory, profile):
    from metro_e2e.stack import LocalStack, StackOptions

    from .conftest import _require_nginx

    _require_nginx()
    return LocalStack(StackOptions(mlflow_server=profile, run_dir=tmp_path_factory.mktemp(f"stack-{profile}")))


@pytest.fixture(scope="module")
def metro_stack_3x(tmp_path_factory):
    with _stack(tmp_path_factory, "3.x") as stack:
        yield stack


@pytest.fixture(scope="module")
def metro_stack_3x_no_allowed_hosts(tmp_path_factory):
    with _stack(tmp_path_factory, "3.x-no-allowed-hosts") as stack:
        yield stack


@pytest.fixture(scope="module")
def metro_mlflow3_python() -> str:
    """An interpreter with an MLflow 3.x client: the 3.x server's own environment (it has sklearn and pandas)."""
    return str(server_env(PROFILES["3.x"]) / "bin" / "python")


def _names(stack):
    tag = uuid.uuid4().hex[:8]
    return stack.config(experiment=f"metro-e2e-{tag}", model_name=f"metro-e2e-{tag}")


def _train_with(python: str, config, tmp_path) -> subprocess.CompletedProcess:
    argv = train_step_argv(python, config, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


CLIENT_MAJOR = int(mlflow.__version__.split(".")[0])
EXPECTED = {  # (client major, server profile) -> registry layout, or None: refused with a clear error
    (2, "2.20.3"): "run",
    (2, "3.x"): "run",
    (3, "2.20.3"): None,
    (3, "3.x"): "logged-model",
}


@pytest.mark.parametrize("server", ["2.20.3", "3.x"])
def test_this_client_with_each_server(server, request):
    stack = request.getfixturevalue("metro_stack" if server == "2.20.3" else "metro_stack_3x")
    config = _names(stack).replace(latest_prefix=f"metro-e2e/{uuid.uuid4().hex[:8]}/latest/")  # not the shared one
    layout = EXPECTED[(CLIENT_MAJOR, server)]
    if layout is None:
        with pytest.raises(TrackingError, match="needs the logged-models API") as info:
            training.train(config, data.split(data.iris_frame()))
        assert mlflow.__version__ in str(info.value)  # names the client version
        return
    result = training.train(config, data.split(data.iris_frame()))
    assert result.version == "1"
    assert registry.locate_version(config, config.model_name).layout == layout
    promoted = promotion.promote(config)
    assert "MLmodel" in promoted.files and promoted.version == "1"


def test_3x_client_with_3x_server_logs_the_mlflow3_layout(metro_stack_3x, metro_mlflow3_python, tmp_path):
    config = _names(metro_stack_3x)
    done = _train_with(metro_mlflow3_python, config, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"registered {config.model_name} version 1" in done.stdout
    where = registry.locate_version(config, config.model_name)
    assert where.layout == "logged-model" and "/models/m-" in f"/{where.prefix}"
    promoted = promotion.promote(config)  # breakage 1, for real: the files are found in the MLflow 3 layout
    assert "MLmodel" in promoted.files


def test_3x_client_with_the_platforms_2_20_3_server_fails_clearly(metro_stack, metro_mlflow3_python, tmp_path):
    config = _names(metro_stack)
    done = _train_with(metro_mlflow3_python, config, tmp_path)
    assert done.returncode == TrackingError.exit_code, done.stderr[-2000:]
    line = done.stderr.strip().splitlines()[-1]
    assert "needs the logged-models API" in line and "mlflow<3" in line and "Traceback" not in done.stderr


def test_3x_server_without_allowed_hosts_refuses_the_gateway(
    metro_stack_3x_no_allowed_hosts, metro_stack_3x, monkeypatch
):
    """PLATFORM.md breakage 3: behind the gateway the Host is the gateway's name, which MLflow 3 rejects."""
    search = "/mlflow/api/2.0/mlflow/experiments/search?max_results=1"
    name = {"Host": "metro-gateway.test"}
    naive = metro_stack_3x_no_allowed_hosts.gateway_url
    assert requests.get(naive + search, headers=name, timeout=10).status_code == 403
    assert requests.get(metro_stack_3x.gateway_url + search, headers=name, timeout=10).status_code == 200
    config, proxy_env = metro_stack_3x_no_allowed_hosts.hostname_client(experiment=f"x-{uuid.uuid4().hex[:6]}")
    for key, value in proxy_env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(AuthError, match="--allowed-hosts"):
        training.train(config, data.split(data.iris_frame()))


def test_check_with_this_client_against_the_platforms_server(metro_stack, tmp_path):
    """MLF-3 with the real pairs: this environment's client against the platform's 2.20.3 server. The default 2.x
    client is a tested pair; a 3.x client (``tox -e mlflow3``) fails MLF-3 naming both versions, and the clauses
    that would log a model with it are blocked."""
    from .checking import check, expect_outcome

    args = ("--url", metro_stack.gateway_url, "--skip", "KFP", "SRV", "PRM", "S3-3")  # the stack is not seeded
    code, report, out = check(tmp_path, *args)
    if CLIENT_MAJOR == 2:
        assert code == 0, out[-3000:]
        expect_outcome(report, {})
    else:
        assert code == 1, out[-3000:]
        expect_outcome(report, {"MLF-3": rf"client {re.escape(mlflow.__version__)} with server 2\.20\.3"})
