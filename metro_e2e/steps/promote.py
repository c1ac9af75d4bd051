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
        result = run(config_from_args(args), version=args.version)
        return (
            f"promoted {result.name} version {result.version} ({len(result.files)} files) "
            f"to s3://{result.bucket}/{result.latest_prefix}"
        )

    return run_step(STEP, body)


if __name__ == "__main__":
    raise SystemExit(main())
