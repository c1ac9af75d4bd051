"""Integration-layer fixtures: real servers on loopback.

``metro_s3_server`` is moto's own threaded S3 server on a free 127.0.0.1
port with the platform's buckets; each test gets its own key namespace.
"""

from __future__ import annotations

import uuid
import warnings

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


class SeededStacks:
    """One seeded stack per test process, handed to each module that asks while it is still as seeded.

    Modules break the stack they get and repair it. Before a module gets it, ``unlike_seeded`` compares it with
    what seeding left: the gateway's options, every process running and not stopped, each service answering,
    ``latest/`` and the Iris dataset byte for byte, the bucket policies, no staged promotion and nothing under
    ``metro-e2e/``, and the files the model server loaded. On any difference the module gets a freshly started
    stack instead. Not compared: MLflow's experiments and registered models (each check works in its own
    namespace) and the run folders MLflow writes into ``ml-models``.
    """

    def __init__(self, tmp_path_factory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.stack = None
        self.seeded: dict = {}
        self.replaced: list[str] = []  # why a stack was replaced, for a reader of the session's output

    def get(self):
        from metro_e2e.stack import LocalStack, StackOptions

        why = self.unlike_seeded() if self.stack else None
        if self.stack is not None and why is None:
            return self.stack
        if self.stack is not None:
            self.replaced.append(why)
            warnings.warn(f"seeded stack replaced: {why}", UserWarning, stacklevel=1)  # in pytest's summary
            self.stack.stop()
        run_dir = self.tmp_path_factory.mktemp("seeded-stack")
        self.stack = LocalStack(StackOptions(run_dir=run_dir, seed_model=True)).start()
        self.seeded = {"options": self.stack.options, "s3": self._s3(), "served": self._served()}
        return self.stack

    def _s3(self) -> dict:
        """What the checks read in S3 besides their own namespaces: ``latest/`` and the dataset byte for byte,
        the bucket policies, and the prefixes that must be empty between runs (staged promotions, run namespaces)."""
        from botocore.exceptions import ClientError

        from metro_e2e import promotion

        config = self.stack.config()
        storage = Storage(config)
        state: dict = {
            "latest/": objects(storage, "ml-models", "latest/"),
            "the Iris dataset": storage.get_bytes_or_none(config.data_bucket, config.data_key),
        }
        for bucket in ("ml-models", "ml-data"):
            try:
                state[f"the policy of {bucket}"] = storage.client.get_bucket_policy(Bucket=bucket)["Policy"]
            except ClientError:
                state[f"the policy of {bucket}"] = None
            state[f"{bucket}/metro-e2e/"] = storage.list_keys(bucket, "metro-e2e/")
        state[f"ml-models/{promotion.STAGING_ROOT}"] = storage.list_keys("ml-models", promotion.STAGING_ROOT)
        return state

    def _served(self) -> dict[str, bytes]:
        root = self.stack.serving.model_dir
        return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}

    def unlike_seeded(self) -> str | None:
        """How the stack differs from what seeding left, or None."""
        import requests

        stack = self.stack
        if stack.options != self.seeded["options"]:
            return "the gateway is configured otherwise"
        processes = {**stack.services, "serving": stack.serving.service}
        for name, service in processes.items():
            if service is None:
                return f"{name} is not running"
            if service.pid is None:  # MinIO in a container: the S3 reads below tell whether it answers
                continue
            if not service.running():
                return f"{name} is not running"
            if proc_stat(service.pid)[0] in ("T", "t"):
                return f"{name} is stopped"
        probes = {
            "mlflow": stack.services["mlflow"].url + "/health",
            "serving": stack.serving.url + "/ping",
            "the gateway": stack.gateway_url + "/mlflow/health",
        }
        for name, url in probes.items():
            try:
                status = requests.get(url, timeout=3).status_code
            except requests.RequestException as exc:
                return f"{name} does not answer ({type(exc).__name__})"
            if status != 200:
                return f"{name} answers HTTP {status}"
        try:
            s3_now = self._s3()
        except Exception as exc:  # noqa: BLE001 - any failure to read S3 means the stack is not as seeded
            return f"S3 cannot be read ({type(exc).__name__})"
        for what, seeded in self.seeded["s3"].items():
            if s3_now[what] != seeded:
                return f"{what} differs from what seeding left"
        if self._served() != self.seeded["served"]:
            return "the model server serves other files than the seeded model"
        return None

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()


@pytest.fixture(scope="session")
def metro_seeded_stacks(tmp_path_factory):
    _require_nginx()
    stacks = SeededStacks(tmp_path_factory)
    try:
        yield stacks
    finally:
        stacks.close()


@pytest.fixture(scope="module")
def metro_seeded_stack(metro_seeded_stacks):
    """A stack seeded as after the guide (iris-model trained, promoted, served). A module may break it and must
    repair it; the next module of this process gets it only if it is still as seeded (``SeededStacks``)."""
    return metro_seeded_stacks.get()


def objects(storage: Storage, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``, byte for byte (to compare, or to put back)."""
    return {k: storage.get_bytes(bucket, k) for k in storage.list_keys(bucket, prefix)}


def proc_stat(pid) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name: state, ppid, pgrp... (OSError once it is gone)."""
    from pathlib import Path

    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


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
