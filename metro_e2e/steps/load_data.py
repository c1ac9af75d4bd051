"""Step: read the Iris CSV from S3, split it (seeded, stratified) and write the four CSVs."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from metro_e2e import data
from metro_e2e.config import MetroConfig
from metro_e2e.steps._cli import add_platform_options, config_from_args, run_step
from metro_e2e.storage import Storage

STEP = "load_data"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m metro_e2e.steps.{STEP}", description=__doc__)
    for name in data.SPLIT_NAMES:
        parser.add_argument(f"--output_dataset_{name}", required=True, help=f"path to write {name} CSV to")
    parser.add_argument("--test_size", type=float, default=data.DEFAULT_TEST_SIZE)
    parser.add_argument("--seed", type=int, default=data.DEFAULT_SEED)
    add_platform_options(parser, ["url", "s3_endpoint", "data_bucket", "data_key", "connect_timeout", "read_timeout"])
    return parser


def run(
    config: MetroConfig,
    outputs: Mapping[str, str],
    *,
    test_size: float = data.DEFAULT_TEST_SIZE,
    seed: int = data.DEFAULT_SEED,
) -> data.Split:
    frame = data.read_dataset(Storage(config), bucket=config.data_bucket, key=config.data_key)
    parts = data.split(frame, test_size=test_size, seed=seed)
    data.write_split(parts, outputs)
    return parts


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> str:
        config = config_from_args(args)
        outputs = {name: getattr(args, f"output_dataset_{name}") for name in data.SPLIT_NAMES}
        parts = run(config, outputs, test_size=args.test_size, seed=args.seed)
        return (
            f"split s3://{config.data_bucket}/{config.data_key} into {len(parts.train_X)} train "
            f"and {len(parts.test_X)} test rows"
        )

    return run_step(STEP, body)


if __name__ == "__main__":
    raise SystemExit(main())
