"""Argument and exit-code plumbing shared by the step CLIs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence

from metro_e2e._console import guarded
from metro_e2e.config import IN_CLUSTER_URL, SETTING_NAMES, MetroConfig, load_config

PLATFORM_OPTIONS = {
    "url": "gateway URL every endpoint derives from (env METRO_URL; default: the in-cluster gateway)",
    "s3_endpoint": "S3 endpoint (env METRO_S3_ENDPOINT; default: the gateway root)",
    "tracking_uri": "MLflow tracking URI (env METRO_TRACKING_URI; default: <url>/mlflow)",
    "data_bucket": "bucket for datasets (env METRO_DATA_BUCKET; default ml-data)",
    "data_key": "key of the Iris CSV (env METRO_DATA_KEY; default iris/iris.csv)",
    "models_bucket": "bucket for models (env METRO_MODELS_BUCKET; default ml-models)",
    "latest_prefix": "prefix the serving pod loads (env METRO_LATEST_PREFIX; default latest/)",
    "experiment": "MLflow experiment (env METRO_EXPERIMENT; default iris-experiment)",
    "model_name": "registered model name (env METRO_MODEL_NAME; default iris-model)",
    "artifact_root": "s3:// root for a new experiment's artifacts (env METRO_ARTIFACT_ROOT; default: the server's)",
    "connect_timeout": "seconds to wait for a connection (env METRO_CONNECT_TIMEOUT; default 5)",
    "read_timeout": "seconds to wait for an answer (env METRO_READ_TIMEOUT; default 30)",
}


def add_platform_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    group = parser.add_argument_group("platform", "command-line options override METRO_* environment variables")
    for name in names:
        group.add_argument(f"--{name}", default=None, help=PLATFORM_OPTIONS[name])


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> MetroConfig:
    cli = {name: getattr(args, name) for name in SETTING_NAMES if getattr(args, name, None) is not None}
    return load_config(cli=cli, environ=os.environ if environ is None else environ, default_url=IN_CLUSTER_URL)


def run_step(name: str, body: Callable[[], str]) -> int:
    """Run ``body``; print its one-line result, or one error line to stderr, and return the exit code."""

    def step() -> int:
        print(body())
        return 0

    return guarded(name, step)
