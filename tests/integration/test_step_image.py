"""The step image for real, where a Docker engine runs (skipped with the reason elsewhere): it builds from this
clone, records its versions, and `pipeline check --image` reads them back and finds them in range."""

from __future__ import annotations

import shutil

import pytest

from metro_e2e.cli import main
from metro_e2e.pipeline import compile_pipeline
from metro_e2e.stack.s3 import docker_available


def test_the_step_image_builds_records_its_versions_and_passes_the_check(tmp_path):
    ok, why = docker_available()
    if not ok or not shutil.which("docker"):
        pytest.skip(f"building the step image needs a Docker engine: {why}")
    assert main(["pipeline", "image", "--registry", "localhost/metro-e2e-test", "--tag", "test"]) == 0
    reference = "localhost/metro-e2e-test/metro-e2e-step:test"
    pipeline = compile_pipeline(tmp_path / "p.yaml", image=reference)
    assert main(["pipeline", "check", str(pipeline), "--image", reference]) == 0
