"""Step: upload the Iris dataset (or a given CSV) to ``s3://ml-data/iris/iris.csv``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pandas as pd

from metro_e2e import data
from metro_e2e.config import MetroConfig
from metro_e2e.steps._cli import add_platform_options, config_from_args, run_step
from metro_e2e.storage import Storage

STEP = "upload_data"


@dataclass(frozen=True)
class UploadResult:
    bucket: str
    key: str
    rows: int
    size: int


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m metro_e2e.steps.{STEP}", description=__doc__)
    parser.add_argument("--input_csv", default=None, help="CSV with a 'target' column to upload instead of Iris")
    add_platform_options(parser, ["url", "s3_endpoint", "data_bucket", "data_key", "connect_timeout", "read_timeout"])
    return parser


def run(config: MetroConfig, *, frame: pd.DataFrame | None = None) -> UploadResult:
    frame = data.iris_frame() if frame is None else frame
    size = data.upload_dataset(Storage(config), frame, bucket=config.data_bucket, key=config.data_key)
    return UploadResult(config.data_bucket, config.data_key, len(frame), size)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> str:
        config = config_from_args(args)
        frame = data.read_csv_file(args.input_csv, require_target=True) if args.input_csv else None
        result = run(config, frame=frame)
        return f"uploaded {result.rows} rows ({result.size} bytes) to s3://{result.bucket}/{result.key}"

    return run_step(STEP, body)


if __name__ == "__main__":
    raise SystemExit(main())
