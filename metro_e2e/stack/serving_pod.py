"""Entry point of the serving image (docker/serving.Dockerfile): what the platform's serving pod does.

Download every object under ``s3://ml-models/latest/`` into a folder, then
exec ``mlflow models serve --env-manager local`` on it. With nothing under
``latest/`` it exits 1, so the container crash-loops as the pod does.
Settings come from ``METRO_*`` variables (``METRO_S3_ENDPOINT``, keys).
"""

from __future__ import annotations

import os
import sys
import tempfile

from metro_e2e._console import guarded
from metro_e2e.config import load_config
from metro_e2e.promotion import download_latest
from metro_e2e.storage import Storage

PORT = "5001"


def main() -> int:
    def body() -> int:
        config = load_config(environ=os.environ)
        folder = tempfile.mkdtemp(prefix="model-")
        files = download_latest(
            Storage(config), bucket=config.models_bucket, latest_prefix=config.latest_prefix, dest=folder
        )
        print(f"serving {len(files)} files from s3://{config.models_bucket}/{config.latest_prefix}", flush=True)
        os.execvp(
            sys.executable,
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                folder,
                "--host",
                "0.0.0.0",
                "--port",
                os.environ.get("PORT", PORT),
                "--env-manager",
                "local",
            ],
        )
        return 1  # not reached

    return guarded("serving", body)


if __name__ == "__main__":
    raise SystemExit(main())
