"""The ``metro-e2e`` command: the decisions about what the user sees live here."""

from __future__ import annotations

import argparse
import os

from metro_e2e import __version__
from metro_e2e._console import guarded
from metro_e2e.config import describe, load_config


def _demo(args: argparse.Namespace) -> int:
    from metro_e2e import demo

    result = demo.run()
    print(
        f"metro-e2e demo: in-process Iris workflow (S3: moto, in-process; MLflow client {result.mlflow_client}, "
        "sqlite store in a temp folder)"
    )
    print(
        f"data       uploaded {result.rows} rows to s3://ml-data/iris/iris.csv; "
        f"split {result.train_rows} train / {result.test_rows} test"
    )
    print(f"training   accuracy {result.train.accuracy:.4f} (run {result.train.run_id})")
    print(f"registry   {result.train.model_name} version {result.train.version}")
    print(
        f"latest/    {len(result.latest_files)} objects in s3://ml-models/latest/, marker says version "
        f"{result.marker_version}:"
    )
    for key in result.latest_files:
        print(f"             {key}")
    print(f"serving    predictions for 2 rows: {result.predictions} (labels {result.expected})")
    return 0 if result.predictions == result.expected else 1


def _config(args: argparse.Namespace) -> int:
    config = load_config(cli={"url": args.url}, environ=os.environ)
    for name, value in describe(config).items():
        print(f"{name:16} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metro-e2e", description="End-to-end conformance suite for the Metro MLOps platform."
    )
    parser.add_argument("--version", action="version", version=f"metro-e2e {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the whole Iris workflow in-process (moto S3, sqlite MLflow)")
    demo.set_defaults(func=_demo)
    cfg = sub.add_parser("config", help="print every setting, its value and where it came from (secrets masked)")
    cfg.add_argument("--url", default=None, help="gateway URL (env METRO_URL)")
    cfg.set_defaults(func=_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded("metro-e2e", lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
