"""Step: promote a registered version (default: the highest) to ``ml-models/latest/`` for serving."""

from __future__ import annotations

import argparse

from metro_e2e import promotion
from metro_e2e.config import MetroConfig
from metro_e2e.steps._cli import add_platform_options, config_from_args, run_step

STEP = "promote"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m metro_e2e.steps.{STEP}", description=__doc__)
    parser.add_argument("--version", default="latest", help="version number to promote (default: the highest)")
    parser.add_argument(
        "--recover",
        action="store_true",
        help="finish an interrupted promotion into latest/ from its staged copy instead of promoting",
    )
    add_platform_options(
        parser,
        [
            "url",
            "s3_endpoint",
            "tracking_uri",
            "model_name",
            "models_bucket",
            "latest_prefix",
            "connect_timeout",
            "read_timeout",
        ],
    )
    return parser


def run(config: MetroConfig, *, version: str = "latest") -> promotion.PromotionResult:
    return promotion.promote(config, version=version)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> str:
        config = config_from_args(args)
        if args.recover:
            from metro_e2e.storage import Storage

            result = promotion.recover(Storage(config), bucket=config.models_bucket, latest_prefix=config.latest_prefix)
            if result is None:
                return f"no unfinished promotion into s3://{config.models_bucket}/{config.latest_prefix}: nothing to do"
            return (
                f"finished the interrupted promotion of {result.name} version {result.version} "
                f"({len(result.files)} files) into s3://{result.bucket}/{result.latest_prefix}"
            )
        result = run(config, version=args.version)
        return (
            f"promoted {result.name} version {result.version} ({len(result.files)} files) "
            f"to s3://{result.bucket}/{result.latest_prefix}"
        )

    return run_step(STEP, body)


if __name__ == "__main__":
    raise SystemExit(main())
