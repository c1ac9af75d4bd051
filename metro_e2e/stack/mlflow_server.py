"""The MLflow tracking server, run the way the platform runs it, from its own cached virtual environment.

The server's version is independent of the suite's client: each profile
names a server version and the pins it needs, and its environment is built
once under the cache folder (``METRO_E2E_CACHE``, default
``~/.cache/metro-e2e``) and reused.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from metro_e2e.stack.process import Service, StackError, http_probe, wait_ready

READY_TIMEOUT_S = 90.0
BUILD_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class ServerProfile:
    """An MLflow server version to rehearse, with the pins it needs and its Host check."""

    name: str
    version: str
    requirements: tuple[str, ...]
    allowed_hosts: str | None = None
    # run MLflow's gunicorn in the CLI's process (mlflow_serve.py): one MLflow import instead of two; 2.x only
    in_process: bool = False


PROFILES = {
    # The platform's server (PLATFORM.md breakage 5: SQLAlchemy 2.1 kills it at start).
    "2.20.3": ServerProfile("2.20.3", "2.20.3", ("mlflow==2.20.3", "sqlalchemy<2.1", "boto3<2"), in_process=True),
    # The current 3.x, as an upgraded platform should run it: the Host check admits the gateway's names.
    "3.x": ServerProfile(
        "3.x",
        "3.17.2",
        ("mlflow==3.17.2", "boto3<2"),
        allowed_hosts="metro-gateway.test,metro-gateway.test:*,127.0.0.1:*,localhost:*",
    ),
    # The current 3.x upgraded naively: API calls through the gateway under its name answer 403 (breakage 3).
    # (MLflow 3 admits localhost and private IPs by default, so loopback IPs alone do not show it.)
    "3.x-no-allowed-hosts": ServerProfile("3.x-no-allowed-hosts", "3.17.2", ("mlflow==3.17.2", "boto3<2")),
}
DEFAULT_PROFILE = "2.20.3"


def cache_dir() -> Path:
    return Path(os.environ.get("METRO_E2E_CACHE") or Path.home() / ".cache" / "metro-e2e")


def server_env(profile: ServerProfile, *, cache: Path | None = None) -> Path:
    """The virtual environment for ``profile``'s version, built once (under a lock) and reused."""
    root = (cache or cache_dir()) / f"mlflow-server-{profile.version}"
    ready = root / ".metro-e2e-ready"
    if ready.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".mlflow-server-{profile.version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same environment
        if ready.exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        started = time.monotonic()
        log = root.parent / f"mlflow-server-{profile.version}-build.log"
        try:
            with open(log, "w") as out:
                subprocess.run(
                    [sys.executable, "-m", "venv", str(root)], check=True, stdout=out, stderr=out, timeout=120
                )
                subprocess.run(
                    [str(root / "bin" / "python"), "-m", "pip", "install", "-q", *profile.requirements],
                    check=True,
                    stdout=out,
                    stderr=out,
                    timeout=BUILD_TIMEOUT_S,
                )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise StackError(f"cannot build the MLflow {profile.version} server environment: {exc}; see {log}") from exc
        ready.write_text(f"built in {time.monotonic() - started:.0f} s\n")
    return root


def mlflow_service(
    profile: ServerProfile,
    *,
    port: int,
    data_dir: Path,
    log_dir: Path,
    s3_endpoint: str,
    access_key: str,
    secret_key: str,
    artifact_root: str = "s3://ml-models/",
    cache: Path | None = None,
) -> Service:
    env_root = server_env(profile, cache=cache)
    data_dir.mkdir(parents=True, exist_ok=True)
    if profile.in_process:
        launcher = [str(env_root / "bin" / "python"), "-P", str(Path(__file__).with_name("mlflow_serve.py"))]
    else:
        launcher = [str(env_root / "bin" / "mlflow"), "server"]
    command = [
        *launcher, "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{data_dir / 'mlflow.db'}",
        "--default-artifact-root", artifact_root, "--serve-artifacts", "--workers", "1",
    ]  # fmt: skip
    if profile.allowed_hosts:
        command += ["--allowed-hosts", profile.allowed_hosts]
    return Service(
        name="mlflow",
        command=command,
        log_path=log_dir / "mlflow.log",
        env={
            "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "PATH": f"{env_root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        cwd=data_dir,
        url=f"http://127.0.0.1:{port}",
        version=profile.version,
    )


def wait_mlflow(service: Service) -> None:
    wait_ready(
        service,
        http_probe(service.url + "/health"),
        expected="HTTP 200 from /health",
        deadline_s=READY_TIMEOUT_S,
        hint="the MLflow server starts in about 6-12 s here",
    )
