"""docker-compose.yml for real, where a Docker engine runs (skipped with the reason elsewhere)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from metro_e2e._poll import NotYet, PollTimeout, poll
from metro_e2e.stack.s3 import docker_available

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"


@pytest.fixture(scope="module")
def metro_compose_stack():
    ok, why = docker_available()
    if not ok or not shutil.which("docker"):
        pytest.skip(f"docker compose needs a Docker engine: {why}")
    compose = ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "-p", "metro-e2e-test"]
    subprocess.run([*compose, "up", "-d", "--build"], check=True, timeout=900)
    try:
        yield GATEWAY
    finally:
        subprocess.run([*compose, "down", "-v"], check=False, timeout=300)


def test_compose_gateway_serves_mlflow_and_s3(metro_compose_stack):  # pragma: no cover - needs Docker
    def mlflow_answers() -> requests.Response | NotYet:
        try:
            answer = requests.get(
                f"{metro_compose_stack}/mlflow/api/2.0/mlflow/experiments/search?max_results=1", timeout=5
            )
        except requests.RequestException as exc:
            return NotYet(exc)
        return answer if answer.status_code == 200 else NotYet(answer)

    try:
        last = poll(mlflow_answers, timeout_s=180, interval_s=2, what="MLflow through the compose gateway")
    except PollTimeout as exc:
        last = exc.seen
    assert getattr(last, "status_code", None) == 200, f"MLflow through the compose gateway: last saw {last!r}"
    assert requests.get(f"{metro_compose_stack}/ml-models", timeout=5).status_code == 403  # anonymous
