"""The step image: its record of versions, checked against the ranges this metro-e2e declares; building and pushing
it; reading the record back out of an image (``docker`` is a stand-in script here: no Docker engine)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from metro_e2e import __version__
from metro_e2e.cli import main
from metro_e2e.pipeline import image

ROOT = Path(__file__).resolve().parents[2]


def in_range_record() -> dict:
    """This environment's record, with any version outside the declared range (tox's mlflow3 env runs an MLflow
    3 client on purpose) set to that range's lower bound."""
    found = image.record()
    for requirement in image._requirements():  # noqa: SLF001
        have = found["packages"].get(requirement.name)
        if have is None or not requirement.specifier.contains(have, prereleases=True):
            floor = next(s.version for s in requirement.specifier if s.operator in (">=", "=="))
            found["packages"][requirement.name] = floor
    return found


def test_this_environment_records_itself_and_an_in_range_record_has_no_problems():
    found = image.record()
    assert found["metro_e2e"] == __version__ and found["packages"]["mlflow"]
    assert set(found["packages"]) == {r.name for r in image._requirements()}  # noqa: SLF001
    assert image.problems(in_range_record()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda r: r["packages"].__setitem__("mlflow", "3.1.0"),
            "the image has mlflow 3.1.0; metro-e2e is tested with <3,>=2.20.3",
        ),
        (lambda r: r["packages"].pop("scikit-learn"), "the image has no scikit-learn; metro-e2e needs"),
        (lambda r: r.__setitem__("python", "3.10.14"), "the image has Python 3.10.14; metro-e2e needs"),
        (lambda r: r.__setitem__("metro_e2e", "0.0.9"), f"the image has metro-e2e 0.0.9, this is {__version__}"),
    ],
)
def test_a_record_outside_the_tested_ranges_is_named(change, expected):
    found = in_range_record()
    change(found)
    problems = image.problems(found)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def _stub_docker(tmp_path: Path, monkeypatch, record: dict | None = None) -> Path:
    """A ``docker`` on PATH that logs its arguments and, for ``run``, prints ``record``."""
    log = tmp_path / "docker.log"
    out = tmp_path / "record.out"
    out.write_text(json.dumps(record or {}))
    stub = tmp_path / "bin" / "docker"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\n[ "$1" = run ] && cat {out}\nexit 0\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}:{os.environ['PATH']}")
    return log


def test_pipeline_check_reads_the_record_out_of_the_image_and_the_images_the_steps_run(tmp_path, monkeypatch, capsys):
    golden = str(ROOT / "fixtures" / "iris_pipeline.yaml")
    record = in_range_record()
    log = _stub_docker(tmp_path, monkeypatch, record)
    assert main(["pipeline", "check", golden, "--image", f"metro-e2e-step:{__version__}"]) == 0
    assert capsys.readouterr().out.endswith("and metro-e2e's tested versions (the step image's record)\n")
    assert (
        f"run --rm --entrypoint python metro-e2e-step:{__version__} -m metro_e2e.pipeline.image show" in log.read_text()
    )
    assert main(["pipeline", "check", golden, "--image", "registry.test/other:1"]) == 10
    assert (
        f"the pipeline's steps run metro-e2e-step:{__version__}, not registry.test/other:1" in capsys.readouterr().out
    )
    record["packages"]["mlflow"] = "3.1.0"
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(record))
    assert main(["pipeline", "check", golden, "--image-record", str(saved)]) == 10
    assert "the image has mlflow 3.1.0" in capsys.readouterr().out


def test_image_builds_then_pushes_and_names_the_reference(tmp_path, monkeypatch, capsys):
    log = _stub_docker(tmp_path, monkeypatch)
    assert main(["pipeline", "image", "--registry", "ghcr.io/acme/", "--tag", "t1", "--push"]) == 0
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["build", "push"]
    assert calls[0] == (
        f"build --build-arg METRO_E2E_VERSION={__version__} -t ghcr.io/acme/metro-e2e-step:t1 -f {ROOT}/Dockerfile {ROOT}"
    )
    assert calls[1] == "push ghcr.io/acme/metro-e2e-step:t1"
    assert capsys.readouterr().out.endswith(
        "step image: ghcr.io/acme/metro-e2e-step:t1 (pass it as --step-image, or to pipeline compile --image)\n"
    )


def test_image_without_docker_or_without_a_clone_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker
    assert main(["pipeline", "image", "--registry", "r"]) == 10
    assert "docker is not on PATH: the step image needs Docker" in capsys.readouterr().err
    assert main(["pipeline", "image", "--registry", "r", "--dry-run"]) == 0  # prints what it would run
    assert main(["pipeline", "image", "--registry", "r", "--context", str(tmp_path)]) == 3
    assert f"no Dockerfile in {tmp_path}: the step image is built from a clone of metro-e2e" in capsys.readouterr().err


def test_the_dockerfile_records_and_checks_the_versions_at_build_time():
    text = (ROOT / "Dockerfile").read_text()
    assert f"python -m metro_e2e.pipeline.image record --output {image.RECORD_PATH}" in text
    assert f"python -m metro_e2e.pipeline.image check {image.RECORD_PATH}" in text
    assert re.search(r"^ARG METRO_E2E_VERSION=(\S+)$", text, re.M).group(1) == __version__
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1:5] == ["*", "!pyproject.toml", "!README.md", "!metro_e2e/"], "the build context is the package"


def test_record_and_check_as_the_build_runs_them(tmp_path, capsys):
    out = tmp_path / "etc" / "image.json"
    assert image.main(["record", "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == image.record()
    out.write_text(json.dumps(in_range_record()))
    assert image.main(["check", str(out)]) == 0
    found = json.loads(out.read_text())
    found["python"] = "3.9.1"
    out.write_text(json.dumps(found))
    assert image.main(["check", str(out)]) == 1
    assert "the image has Python 3.9.1" in capsys.readouterr().err
