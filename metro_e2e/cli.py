"""The ``metro-e2e`` command: the decisions about what the user sees live here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from metro_e2e import __version__
from metro_e2e.config import describe, load_config
from metro_e2e.errors import MetroE2EError


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
    logging.basicConfig(level=os.environ.get("METRO_LOG_LEVEL", "WARNING").upper(), stream=sys.stderr)
    try:
        return args.func(args)
    except MetroE2EError as exc:
        print(f"metro-e2e: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("metro-e2e: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place an unexpected error becomes one line
        if os.environ.get("METRO_DEBUG"):
            traceback.print_exc()
        print(
            f"metro-e2e: internal error: {type(exc).__name__}: {exc} (set METRO_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
