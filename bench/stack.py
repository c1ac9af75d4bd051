"""Medians of 3 for the local stack: cold start (environments already built) and the whole integration tier (its slow
tests included).

Not a test: run it by hand, e.g. `.venv/bin/python bench/stack.py --runs 3` (add `--skip-tier` for cold start only).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metro_e2e.stack import LocalStack, StackOptions
from metro_e2e.stack.mlflow_server import DEFAULT_PROFILE, PROFILES, server_env

ROOT = Path(__file__).resolve().parents[1]


def cold_start(profile: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(StackOptions(mlflow_server=profile, run_dir=Path(tmp)))
        started = time.perf_counter()
        stack.start()
        took = time.perf_counter() - started
        stack.stop()
    return took


def tier() -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/integration", "-n", "2", "-q", "-p", "no:cacheprovider", "-m", ""],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - started
    print("   ", done.stdout.strip().splitlines()[-1])
    if done.returncode:
        raise SystemExit(f"the integration tier failed:\n{done.stdout[-3000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    parser.add_argument("--skip-tier", action="store_true")
    args = parser.parse_args()
    server_env(PROFILES[args.profile])  # built once, outside the timings
    starts = [cold_start(args.profile) for _ in range(args.runs)]
    print(
        f"stack cold start ({args.profile}): "
        + ", ".join(f"{s:.1f}" for s in starts)
        + f" s; median {statistics.median(starts):.1f} s"
    )
    if not args.skip_tier:
        runs = []
        for _ in range(args.runs):
            runs.append(tier())
        print(
            "integration tier: " + ", ".join(f"{s:.0f}" for s in runs) + f" s; median {statistics.median(runs):.0f} s"
        )


if __name__ == "__main__":
    main()
