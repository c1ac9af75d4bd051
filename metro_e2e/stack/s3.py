"""S3 for the local stack: MinIO when it can be had (Docker, or a ``minio`` binary on PATH), else moto's server.

Every backend gets the platform's buckets ``ml-models`` and ``ml-data`` and
the platform's credentials; the stack's report names the backend used.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from metro_e2e.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from metro_e2e.stack.process import Service, http_probe, wait_ready

MINIO_IMAGE = "minio/minio:RELEASE.2024-12-18T13-15-44Z"  # pinned explicitly: testcontainers' default tag is gone
BUCKETS = ("ml-models", "ml-data")
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class S3Choice:
    backend: str  # "minio (docker)" | "minio (binary)" | "moto"
    reason: str


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers (not only the client), with the reason when it does not."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"; the reason is reported
        return False, f"no Docker engine ({type(exc).__name__})"
    return True, "Docker engine answered"


def choose_backend(prefer: str = "auto") -> S3Choice:
    """``auto``: MinIO via Docker, else a ``minio`` binary, else moto's server."""
    if prefer == "moto":
        return S3Choice("moto", "requested")
    if shutil.which("minio"):
        return S3Choice("minio (binary)", f"minio found at {shutil.which('minio')}")
    ok, why = docker_available()
    if ok:
        return S3Choice("minio (docker)", why)
    return S3Choice("moto", f"no minio binary on PATH and {why}")


def moto_service(*, port: int, log_dir: Path, custom_endpoints: list[str]) -> Service:
    return Service(
        name="s3",
        command=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        log_path=log_dir / "s3.log",
        # moto reads a non-IP Host (the gateway's name) as a bucket unless told it is an endpoint
        env={"MOTO_S3_CUSTOM_ENDPOINTS": ",".join(custom_endpoints)},
        url=f"http://127.0.0.1:{port}",
        version=_moto_version(),
    )


def minio_binary_service(*, port: int, data_dir: Path, log_dir: Path) -> Service:
    data_dir.mkdir(parents=True, exist_ok=True)
    return Service(
        name="s3",
        command=[
            shutil.which("minio") or "minio",
            "server",
            str(data_dir),
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            "127.0.0.1:0",
            "--quiet",
        ],
        log_path=log_dir / "s3.log",
        env={"MINIO_ROOT_USER": DEFAULT_ACCESS_KEY, "MINIO_ROOT_PASSWORD": DEFAULT_SECRET_KEY},
        url=f"http://127.0.0.1:{port}",
    )


def wait_s3(service: Service) -> None:
    # moto answers / with its index; MinIO's liveness endpoint is /minio/health/live
    path = "/minio/health/live" if "minio" in service.command[0] else "/moto-api/"
    wait_ready(service, http_probe(service.url + path), expected=f"HTTP 200 from {path}", deadline_s=READY_TIMEOUT_S)


def _moto_version() -> str:
    from importlib.metadata import version

    return f"moto {version('moto')}"


class MinioContainer:
    """MinIO in Docker through testcontainers, image and credentials explicit (PLATFORM.md breakage 8)."""

    name = "s3"

    def __init__(self, *, log_dir: Path) -> None:
        self.log_path = log_dir / "s3.log"
        self.url = ""
        self.version = MINIO_IMAGE
        self.container = None

    def start(self) -> MinioContainer:
        try:  # testcontainers >= 4.14 moved it; older 4.x releases have the original module
            from testcontainers.community.minio import MinioContainer as _Minio
        except ImportError:
            from testcontainers.minio import MinioContainer as _Minio

        self.container = _Minio(image=MINIO_IMAGE, access_key=DEFAULT_ACCESS_KEY, secret_key=DEFAULT_SECRET_KEY)
        self.container.start()
        host = self.container.get_container_host_ip()
        self.url = f"http://{host}:{self.container.get_exposed_port(9000)}"
        return self

    @property
    def pid(self) -> None:
        return None

    def stop(self) -> None:
        if self.container is not None:
            try:
                self.log_path.write_bytes(b"".join(self.container.get_logs()))
            finally:
                self.container.stop()
                self.container = None
