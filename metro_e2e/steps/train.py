"""Step: train the Iris classifier from the four split CSVs, log it to MLflow and register a version."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

from metro_e2e import data, training
from metro_e2e.config import MetroConfig
from metro_e2e.errors import InputError
from metro_e2e.steps._cli import add_platform_options, config_from_args, run_step

STEP = "train"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m metro_e2e.steps.{STEP}", description=__doc__)
    for name in data.SPLIT_NAMES:
        parser.add_argument(f"--dataset_{name}", required=True, help=f"path of the {name} CSV")
    lineage = parser.add_mutually_exclusive_group()
    lineage.add_argument("--lineage_tag", default=None, help="recorded as tag metro_e2e.lineage (e.g. the KFP run id)")
    lineage.add_argument(
        "--lineage_from_uri",
        default=None,
        metavar="URI",
        help="record as the lineage tag the KFP run id in the URI of the artifact written to --output_result "
        "(KFP 2.4.0, which does not resolve the job-id placeholder)",
    )
    parser.add_argument("--output_result", default=None, help="path to write the result as JSON")
    parser.add_argument("--output_version", default=None, help="path to write the registered version number to")
    add_platform_options(
        parser,
        [
            "url",
            "s3_endpoint",
            "tracking_uri",
            "experiment",
            "model_name",
            "artifact_root",
            "connect_timeout",
            "read_timeout",
        ],
    )
    return parser


def run(config: MetroConfig, inputs: Mapping[str, str], *, lineage: str | None = None) -> training.TrainResult:
    return training.train(config, data.read_split(inputs), lineage=lineage)


def _write(path: str | None, option: str, text: str) -> None:
    if not path:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    except OSError as exc:
        raise InputError(f"cannot write {option} {path!r}: {exc.strerror}") from exc


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> str:
        config = config_from_args(args)
        inputs = {name: getattr(args, f"dataset_{name}") for name in data.SPLIT_NAMES}
        lineage = args.lineage_tag
        if args.lineage_from_uri:
            if not args.output_result:
                raise InputError(
                    "--lineage_from_uri needs --output_result: the URI must name the file this step writes"
                )
            from metro_e2e.pipeline.backend import run_id_from_artifact_uri

            lineage = run_id_from_artifact_uri(args.lineage_from_uri, args.output_result)
        result = run(config, inputs, lineage=lineage)
        _write(args.output_result, "--output_result", json.dumps(dataclasses.asdict(result), indent=2))
        _write(args.output_version, "--output_version", result.version)
        return (
            f"registered {result.model_name} version {result.version} "
            f"(run {result.run_id}, accuracy {result.accuracy:.4f})"
        )

    return run_step(STEP, body)


if __name__ == "__main__":
    raise SystemExit(main())
