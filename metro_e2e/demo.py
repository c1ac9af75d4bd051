"""The whole Iris workflow in one process: moto-mocked S3 and a sqlite MLflow store in a temp folder.

Upload, split, train and register, promote to ``latest/``, load the model
the way the serving pod does and score two rows through MLflow's own
scoring-server code. Nothing leaves the process.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from metro_e2e import data, promotion, serving, training
from metro_e2e.config import MetroConfig, load_config
from metro_e2e.registry import client_version
from metro_e2e.storage import Storage

DEMO_URL = "http://metro.demo"


@dataclass(frozen=True)
class DemoResult:
    mlflow_client: str
    store: str
    rows: int
    train_rows: int
    test_rows: int
    train: training.TrainResult
    latest_files: list[str]
    marker_version: str
    predictions: list
    expected: list


@contextlib.contextmanager
def in_process_platform(tracking_uri: str, **settings: str) -> Iterator[MetroConfig]:
    """A moto-mocked S3 holding the platform's buckets, and MLflow at ``tracking_uri`` (a sqlite store).

    ``settings`` override further settings (experiment, model name...). The
    S3 endpoint is a host name, as on real clusters, so moto is told about it
    (PLATFORM.md: moto reads a non-IP Host as a bucket name otherwise).
    """
    from moto import mock_aws

    saved = os.environ.get("MOTO_S3_CUSTOM_ENDPOINTS")
    os.environ["MOTO_S3_CUSTOM_ENDPOINTS"] = DEMO_URL
    try:
        with mock_aws():
            config = load_config(
                cli={"url": DEMO_URL, "tracking_uri": tracking_uri, "artifact_root": "s3://ml-models", **settings},
                environ={},
            )
            storage = Storage(config)
            for bucket in (config.models_bucket, config.data_bucket):
                storage.create_bucket(bucket)
            yield config
    finally:
        if saved is None:
            os.environ.pop("MOTO_S3_CUSTOM_ENDPOINTS", None)
        else:
            os.environ["MOTO_S3_CUSTOM_ENDPOINTS"] = saved


def run() -> DemoResult:
    """Run the workflow end to end and return what each step produced."""
    import mlflow.pyfunc

    with (
        tempfile.TemporaryDirectory(prefix="metro-e2e-demo-") as tmp,
        in_process_platform(f"sqlite:///{Path(tmp) / 'mlflow.db'}") as config,
    ):
        storage = Storage(config)
        frame = data.iris_frame()
        data.upload_dataset(storage, frame, bucket=config.data_bucket, key=config.data_key)
        parts = data.split(data.read_dataset(storage, bucket=config.data_bucket, key=config.data_key))
        paths = {name: str(Path(tmp) / "split" / f"{name}.csv") for name in data.SPLIT_NAMES}
        data.write_split(parts, paths)
        result = training.train(config, data.read_split(paths))
        promoted = promotion.promote(config, version=result.version, storage=storage)
        model_dir = Path(tmp) / "serving"
        promotion.download_latest(
            storage, bucket=config.models_bucket, latest_prefix=config.latest_prefix, dest=model_dir
        )
        model = mlflow.pyfunc.load_model(str(model_dir))
        session = serving.requests.Session()
        session.mount("http://", serving.InProcessScoring(model))
        client = serving.ServingClient.from_config(config, session=session)
        rows = frame.drop(columns=[data.TARGET]).iloc[[0, 100]]
        answer = client.predict(serving.dataframe_split(rows))
        return DemoResult(
            mlflow_client=client_version(),
            store=config.tracking_uri,
            rows=len(frame),
            train_rows=len(parts.train_X),
            test_rows=len(parts.test_X),
            train=result,
            latest_files=sorted(storage.list_keys(config.models_bucket, config.latest_prefix)),
            marker_version=promoted.version,
            predictions=answer.predictions,
            expected=frame[data.TARGET].iloc[[0, 100]].tolist(),
        )
