"""Argument and exit-code plumbing shared by the step CLIs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence

from metro_e2e._console import guarded
from metro_e2e.config import IN_CLUSTER_URL, SETTING_NAMES, SETTINGS, MetroConfig, Setting, load_config


def _option_help(setting: Setting) -> str:
    """The setting's declared help, its environment variable and its default in a step (the in-cluster gateway)."""
    text = f"{setting.help} (env {setting.env}; default: {setting.default_text(IN_CLUSTER_URL)})"
    return text.replace("%", "%%")  # argparse formats help with %


# every setting declared with step=True, and its --help text, from metro_e2e.config
PLATFORM_OPTIONS = {s.name: _option_help(s) for s in SETTINGS if s.step}


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
