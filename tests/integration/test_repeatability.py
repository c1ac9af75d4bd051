"""The suite gives the same verdicts however it is run: serial or under pytest-xdist, and run after run (soak)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from metro_e2e.conformance.catalogue import CLAUSES

from .conftest import clean_env

# off the default run (CI runs `pytest -n 2 -m slow`): a soak of three checks and the live tier under xdist (about 2 minutes)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SOAK_RUNS_IN_CI = 3  # the full 20 by hand: bench/soak.py --runs 20


def _live_tier(url: str, report: Path, workers: str) -> dict[str, str]:
    env = clean_env()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/live",
            "-n",
            workers,
            "-q",
            "-p",
            "no:cacheprovider",
            "--metro-url",
            url,
            "--metro-skip",
            "KFP",
            "--metro-report-json",
            str(report),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return {c["id"]: c["verdict"] for c in json.loads(report.read_text())["clauses"]}


def test_xdist_with_two_workers_gives_the_serial_verdicts(metro_seeded_stack, tmp_path):
    serial = _live_tier(metro_seeded_stack.gateway_url, tmp_path / "serial.json", "0")
    parallel = _live_tier(metro_seeded_stack.gateway_url, tmp_path / "xdist.json", "2")
    assert parallel == serial
    assert len(serial) == len(CLAUSES) and list(serial.values()).count("passed") >= 15, serial


def test_soak_short_count_has_no_flaky_verdict_and_no_leftovers():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--runs", str(SOAK_RUNS_IN_CI)],
        capture_output=True,
        text=True,
        timeout=900,
        env=clean_env(),
    )
    summary = next((line for line in done.stdout.splitlines() if " runs, " in line), done.stdout[-2000:])
    print(summary)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(
        rf"^{SOAK_RUNS_IN_CI} runs, {len(CLAUSES)} clauses, flaky verdicts: 0 ; leftovers: 0; runs not passing: 0",
        summary,
    ), summary
