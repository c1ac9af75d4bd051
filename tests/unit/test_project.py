"""The project's promises about itself: README set-up commands, .ci/run, entry points, tox envs."""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Set up.*?```bash\n(.*?)```", readme, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    main_job, tests = _setup_commands()
    assert main_job.endswith("metro-e2e check")
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, "README command (b) must appear verbatim in .ci/run"


def test_entry_points_and_tested_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["metro-e2e"] == "metro_e2e.cli:main"
    assert project["entry-points"]["pytest11"]["metro_e2e"] == "metro_e2e.pytest_plugin"
    deps = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0]: d for d in project["dependencies"]}
    assert deps["mlflow"].startswith("mlflow>=2.20.3,<3")
    assert all(re.search(r"<\d", d) for d in project["dependencies"]), "every dependency has an upper bound"


def test_tox_has_an_env_per_layer_and_per_mlflow_major():
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = {s.removeprefix("testenv:") for s in tox.sections() if s.startswith("testenv:")}
    assert {"unit", "integration", "live", "lint", "mlflow2", "mlflow3"} <= envs


def test_dockerfile_builds_the_step_image_as_a_non_root_user():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    assert lines[[i for i, line in enumerate(lines) if not line.startswith("#")][0]] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install .") for line in lines), "installs the package with its pinned ranges"
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert "COPY metro_e2e ./metro_e2e" in lines


def test_only_the_packaging_and_robustness_modules_are_slow():
    """The slow tier (off the default run, run by CI after it) holds these four modules and nothing else: a
    clause's breakage tests stay in the loop people run while they change a check (docs/testing.md)."""
    slow = {
        f.name
        for f in (ROOT / "tests").rglob("test_*.py")
        if re.search(r"^pytestmark = pytest\.mark\.slow$", f.read_text(), re.M)
    }
    assert slow == {
        "test_plain_install.py",
        "test_repeatability.py",
        "test_mlflow_pairs.py",
        "test_faults_mid_run.py",
    }
