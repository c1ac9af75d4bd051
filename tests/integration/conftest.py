"""Integration-layer fixtures: real servers on loopback.

``metro_s3_server`` is moto's own threaded S3 server on a free 127.0.0.1
port with the platform's buckets; each test gets its own key namespace.
"""

from __future__ import annotations

import uuid

import pytest

from metro_e2e.config import MetroConfig, load_config
from metro_e2e.storage import Storage


@pytest.fixture(scope="session")
def metro_s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    storage = Storage(load_config(cli={"url": url}, environ={}))
    for bucket in ("ml-models", "ml-data"):
        storage.create_bucket(bucket)
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def metro_loopback_platform(metro_s3_server, tmp_path) -> MetroConfig:
    """S3 on loopback plus a sqlite MLflow store, with names unique to this test."""
    tag = uuid.uuid4().hex[:10]
    return load_config(
        cli={
            "url": metro_s3_server,
            "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "artifact_root": "s3://ml-models",
            "data_key": f"metro-e2e/{tag}/iris.csv",
            "experiment": f"metro-e2e-{tag}",
            "model_name": f"metro-e2e-{tag}",
            "latest_prefix": f"metro-e2e/{tag}/latest/",
        },
        environ={},
    )


def _require_nginx() -> None:
    """Skip with one line on a laptop without nginx; in CI (CI=true) a missing gateway is a failure."""
    import os

    from metro_e2e.stack.gateway import NGINX_INSTALL_HINT, nginx_binary
    from metro_e2e.stack.process import StackError

    try:
        nginx_binary()
    except StackError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip(f"the local stack needs nginx ({NGINX_INSTALL_HINT})")


@pytest.fixture(scope="session")
def metro_stack(tmp_path_factory):
    """One local Metro stack per session (per xdist worker: --dist loadfile keeps each module on one worker)."""
    from metro_e2e.stack import LocalStack, StackOptions

    _require_nginx()
    stack = LocalStack(StackOptions(run_dir=tmp_path_factory.mktemp("stack")))
    with stack:
        yield stack


@pytest.fixture(scope="module")
def metro_disposable_stack(tmp_path_factory):
    """A stack that tests may break (kill services); never shared with other modules."""
    from metro_e2e.stack import LocalStack, StackOptions

    _require_nginx()
    with LocalStack(StackOptions(run_dir=tmp_path_factory.mktemp("disposable-stack"))) as stack:
        yield stack


@pytest.fixture(scope="module")
def metro_seeded_stack(tmp_path_factory):
    """A stack per module, seeded as after the guide (iris-model trained, promoted, served); tests may break it."""
    from metro_e2e.stack import LocalStack, StackOptions

    _require_nginx()
    with LocalStack(StackOptions(run_dir=tmp_path_factory.mktemp("seeded-stack"), seed_model=True)) as stack:
        yield stack


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any METRO_* setting (the command under test gets only ``overrides``)."""
    import os

    return {**{k: v for k, v in os.environ.items() if not k.startswith("METRO_")}, **overrides}


def train_step_argv(python: str, config: MetroConfig, folder) -> list[str]:
    """``python -m metro_e2e.steps.train`` on a fresh Iris split written under ``folder``, for ``config``."""
    from metro_e2e import data

    paths = {n: str(folder / f"{n}.csv") for n in data.SPLIT_NAMES}
    data.write_split(data.split(data.iris_frame()), paths)
    return [
        python,
        "-m",
        "metro_e2e.steps.train",
        *[a for n in data.SPLIT_NAMES for a in (f"--dataset_{n}", paths[n])],
        "--url",
        config.url,
        "--experiment",
        config.experiment,
        "--model_name",
        config.model_name,
    ]
