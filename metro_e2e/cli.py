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


def _pipeline_compile(args: argparse.Namespace) -> int:
    from metro_e2e.pipeline import compile_pipeline

    out = compile_pipeline(args.output, image=args.image)
    print(f"compiled the Iris pipeline (step image {args.image}) to {out}")
    return 0


def _pipeline_check(args: argparse.Namespace) -> int:
    from metro_e2e.pipeline import spec

    problems = spec.check(spec.load(_existing(args.file)))
    for problem in problems:
        print(f"  {problem}")
    print(f"{args.file}: {'conforms to the step CLIs' if not problems else f'{len(problems)} problem(s)'}")
    return 0 if not problems else 10


def _pipeline_run_local(args: argparse.Namespace) -> int:
    from metro_e2e.errors import PipelineError
    from metro_e2e.pipeline.local import run_local

    try:
        result = run_local(
            _existing(args.file), params=args.param, run_dir=args.run_dir, task_timeout=args.task_timeout
        )
    except PipelineError as exc:
        partial = getattr(exc, "result", None)
        if partial is not None:
            print(partial.summary())
        raise
    print(result.summary())
    print(f"run {result.run_id} succeeded; logs and artifacts in {result.run_dir}")
    return 0


def _existing(path: str) -> str:
    from pathlib import Path

    from metro_e2e.errors import InputError

    if not Path(path).is_file():
        raise InputError(
            f"pipeline file {path!r} does not exist", hint="compile one with: metro-e2e pipeline compile -o FILE"
        )
    return path


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

    from metro_e2e.pipeline.definition import DEFAULT_IMAGE  # kfp is imported only when used

    pipe = sub.add_parser("pipeline", help="compile, check or locally run the Iris KFP pipeline")
    psub = pipe.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")
    comp = psub.add_parser("compile", help="compile the pipeline to YAML (deterministic)")
    comp.add_argument("-o", "--output", required=True, help="YAML file to write")
    comp.add_argument(
        "--image", default=DEFAULT_IMAGE, help=f"step image every component runs (default {DEFAULT_IMAGE})"
    )
    comp.set_defaults(func=_pipeline_compile)
    chk = psub.add_parser("check", help="check a compiled YAML against the step CLIs it calls")
    chk.add_argument("file")
    chk.set_defaults(func=_pipeline_check)
    run = psub.add_parser("run-local", help="run a compiled YAML here: no Kubernetes, no Docker")
    run.add_argument("file")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="pipeline parameter")
    run.add_argument("--run-dir", default=".metro-e2e/runs", help="where task logs and artifacts go")
    run.add_argument("--task-timeout", type=float, default=600.0, help="seconds before a task is killed")
    run.set_defaults(func=_pipeline_run_local)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded("metro-e2e", lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
