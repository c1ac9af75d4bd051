"""The model server, as the platform's serving pod runs it.

At start it downloads every object under ``ml-models/latest/`` into a folder
and runs the scoring server ``mlflow models serve --env-manager local`` runs
(``model_serve.py``: MLflow's own command for it, in one process). With nothing under
``latest/`` it does not start, the way the pod crash-loops, and says so in
its state. ``restart()`` is the local ``kubectl rollout restart``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from metro_e2e.config import MetroConfig
from metro_e2e.errors import PromotionError
from metro_e2e.promotion import download_latest
from metro_e2e.stack.process import Service, http_probe, wait_ready
from metro_e2e.storage import Storage

READY_TIMEOUT_S = 60.0


class ModelServer:
    """MLflow's scoring server of whatever ``latest/`` holds at (re)start."""

    def __init__(
        self, *, port: int, run_dir: Path, log_dir: Path, s3_config: MetroConfig, python: str = sys.executable
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.model_dir = run_dir / "serving" / "model"
        self.log_path = log_dir / "serving.log"
        self.s3_config = s3_config
        self.python = python
        self.service: Service | None = None
        self.state = "stopped"
        self.starts = 0
        self.version = _mlflow_version()

    def start(self) -> str:
        """Download ``latest/`` and serve it; return the state ("running" or why it is crash-looping)."""
        self.starts += 1
        shutil.rmtree(self.model_dir, ignore_errors=True)
        self.model_dir.mkdir(parents=True)
        cfg = self.s3_config
        try:
            files = download_latest(
                Storage(cfg), bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, dest=self.model_dir
            )
        except PromotionError as exc:
            self.state = f"crash-looping: {exc.message}"
            with open(self.log_path, "a") as out:
                out.write(f"serving start {self.starts}: {self.state}\n")
            return self.state
        self.service = Service(
            name="serving",
            # MLflow's own scoring server command, in one process instead of two (model_serve.py)
            command=[
                self.python,
                "-m",
                "metro_e2e.stack.model_serve",
                str(self.model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            log_path=self.log_path,
            url=self.url,
        ).start()
        wait_ready(
            self.service,
            http_probe(self.url + "/ping"),
            expected="HTTP 200 from /ping",
            deadline_s=READY_TIMEOUT_S,
            hint=f"serving {len(files)} files from {self.model_dir}",
        )
        self.state = "running"
        return self.state

    def stop(self) -> None:
        if self.service:
            self.service.stop()
            self.service = None
        self.state = "stopped"

    def restart(self) -> str:
        """Stop, download ``latest/`` again and serve it: the equivalent of ``kubectl rollout restart``."""
        self.stop()
        return self.start()

    @property
    def pid(self) -> int | None:
        return self.service.pid if self.service else None


def _mlflow_version() -> str:
    from importlib.metadata import version

    return f"mlflow {version('mlflow')}"
