"""A plain ``pip install .`` (no extras, not editable) is enough for ``metro-e2e check``: what it needs at run
time is a runtime dependency. The fresh environment checks the local stack to a complete report and bundle, and
reads the bundle back (``report``, ``diff``: the report's schema is validated with a runtime dependency)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metro_e2e.conformance.catalogue import CLAUSES

from .checking import expect_outcome

# off the default run (CI runs `pytest -n 2 -m slow`): a fresh virtual environment and `pip install .` (about 2 minutes)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_a_plain_install_runs_check_to_its_reports(metro_seeded_stack, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-compile", str(ROOT)],  # no byte-compiling: half the time
        capture_output=True,
        text=True,
        timeout=1500,
        env=env,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    extras = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import xdist, pytest_httpserver, hypothesis"],
        capture_output=True,
        env=env,
    )
    assert extras.returncode != 0, "the test extras must not be there: this proves the plain install"
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    done = subprocess.run(
        [str(venv / "bin" / "metro-e2e"), "check", "--url", metro_seeded_stack.gateway_url, "--skip", "KFP"]
        + ["--report-json", str(report), "--junit-xml", str(junit), "--bundle", str(tmp_path / "run.tar.gz")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={k: v for k, v in env.items() if not k.startswith("METRO_")},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    expect_outcome(json.loads(report.read_text()), {})
    assert junit.read_text().count("<testcase") == len(CLAUSES)
    for argv in (["report", "run.tar.gz", "--html", "run.html"], ["diff", "report.json", "run.tar.gz"]):
        done = subprocess.run(
            [str(venv / "bin" / "metro-e2e"), *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
        )
        assert done.returncode == 0, f"metro-e2e {' '.join(argv)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    assert (tmp_path / "run.html").read_text().count('<tr data-clause="') == len(CLAUSES)
