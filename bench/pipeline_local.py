"""Median wall time of `metro-e2e pipeline run-local` (all three tasks, promote=true).

Against moto's S3 server on a free loopback port and a fresh sqlite MLflow store
per run. Not a test: run it by hand, e.g. `.venv/bin/python bench/pipeline_local.py --runs 3`.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from moto.server import ThreadedMotoServer

from metro_e2e import data
from metro_e2e.config import load_config
from metro_e2e.pipeline.local import run_local
from metro_e2e.storage import Storage

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pipeline", default=str(ROOT / "fixtures" / "iris_pipeline.yaml"))
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        storage = Storage(load_config(cli={"url": url}, environ={}))
        for bucket in ("ml-models", "ml-data"):
            storage.create_bucket(bucket)
        data.upload_dataset(storage, data.iris_frame(), bucket="ml-data", key="iris/iris.csv")
        os.environ["METRO_ARTIFACT_ROOT"] = "s3://ml-models"
        times = []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                result = run_local(
                    args.pipeline,
                    params=[f"s3_endpoint={url}", f"tracking_uri=sqlite:///{tmp}/mlflow.db", "promote=true"],
                    run_dir=tmp,
                )
                times.append(time.perf_counter() - started)
                assert result.succeeded
                print(
                    f"run {i + 1}: {times[-1]:.1f} s  " + ", ".join(f"{t.name} {t.seconds:.1f}s" for t in result.tasks)
                )
        print(f"median of {len(times)}: {statistics.median(times):.1f} s")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
