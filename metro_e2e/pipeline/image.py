"""The step image: build and push it once, and know what is inside it.

``metro-e2e pipeline image --registry REGISTRY [--tag TAG] [--push] [--dry-run]`` builds the Dockerfile of
a metro-e2e clone (the same image runs the pipeline's steps and, in a cluster, ``metro-e2e check``). At
build time the image records its Python and package versions in ``RECORD_PATH`` (``record``), and the
build fails if they are outside the ranges this metro-e2e declares. ``problems`` compares a record with
those ranges: the ones in this package's own metadata (its ``pyproject.toml``), read with ``packaging``,
so a range is declared once. ``metro-e2e pipeline check --image IMAGE`` reads the record out of an image
(``docker run``) or ``--image-record FILE`` reads a saved one.

``python -m metro_e2e.pipeline.image record|show|check`` is what runs inside the image.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from metro_e2e import __version__
from metro_e2e.errors import InputError, PipelineError
from metro_e2e.pipeline import IMAGE_NAME

DIST = "metro-e2e"
RECORD_PATH = "/etc/metro-e2e/image.json"
DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"  # in a clone; a wheel has no Dockerfile


def _requirements() -> list:
    from packaging.requirements import Requirement

    found = []
    for text in metadata.requires(DIST) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            found.append(requirement)
    return found


def record() -> dict:
    """What this environment is: its Python and metro-e2e, and every runtime dependency's version."""
    packages = {}
    for requirement in _requirements():
        try:
            packages[requirement.name] = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            packages[requirement.name] = None
    return {"metro_e2e": __version__, "python": platform.python_version(), "packages": packages}


def problems(found: dict) -> list[str]:
    """Every way the record ``found`` is not what this metro-e2e was tested with (empty: it is)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    out = []
    if found.get("metro_e2e") != __version__:
        out.append(
            f"the image has metro-e2e {found.get('metro_e2e')}, this is {__version__}: its steps may not take the "
            "arguments this pipeline passes (build the image from this version)"
        )
    python = SpecifierSet(metadata.metadata(DIST)["Requires-Python"] or "")
    try:
        if Version(str(found.get("python"))) not in python:
            out.append(f"the image has Python {found.get('python')}; metro-e2e needs {python}")
    except InvalidVersion:
        out.append(f"the image's record has no readable Python version ({found.get('python')!r})")
    packages = found.get("packages") or {}
    for requirement in _requirements():
        have = packages.get(requirement.name)
        if have is None:
            out.append(f"the image has no {requirement.name}; metro-e2e needs {requirement.specifier}")
        elif not requirement.specifier.contains(have, prereleases=True):
            out.append(f"the image has {requirement.name} {have}; metro-e2e is tested with {requirement.specifier}")
    return out


def reference(registry: str, tag: str = __version__) -> str:
    return f"{registry.rstrip('/')}/{IMAGE_NAME}:{tag}" if registry else f"{IMAGE_NAME}:{tag}"


BUILD_TIMEOUT_S = {"build": 3600.0, "push": 1800.0}


def _version_in(context: Path) -> str:
    """The version of the metro-e2e in ``context`` (the clone the image is built from), else this one's."""
    import re

    init = context / "metro_e2e" / "__init__.py"
    found = re.search(r'^__version__ = "([^"]+)"', init.read_text(), re.M) if init.is_file() else None
    return found.group(1) if found else __version__


def build_commands(image: str, *, context: Path, push: bool) -> list[list[str]]:
    commands = [
        ["docker", "build", "--build-arg", f"METRO_E2E_VERSION={_version_in(context)}", "-t", image, "-f",
         str(context / "Dockerfile"), str(context)],
    ]  # fmt: skip
    if push:
        commands.append(["docker", "push", image])
    return commands


def build(registry: str, *, tag: str, push: bool, dry_run: bool, context: str | None, out=print) -> str:
    """Build (and push) the step image; with ``dry_run``, print the commands only. The image's reference."""
    folder = Path(context) if context else DOCKERFILE.parent
    if not (folder / "Dockerfile").is_file():
        raise InputError(
            f"no Dockerfile in {folder}: the step image is built from a clone of metro-e2e",
            hint="run this in a clone, or pass --context with the clone's folder",
        )
    image = reference(registry, tag)
    commands = build_commands(image, context=folder, push=push)
    if not dry_run and not shutil.which("docker"):
        raise PipelineError(
            "docker is not on PATH: the step image needs Docker (or run with --dry-run and build it elsewhere)"
        )
    for command in commands:
        out("$ " + " ".join(command))
        if not dry_run:
            try:
                done = subprocess.run(command, check=False, timeout=BUILD_TIMEOUT_S[command[1]])
            except subprocess.TimeoutExpired:
                raise PipelineError(
                    f"{command[0]} {command[1]} did not end within {BUILD_TIMEOUT_S[command[1]]:.0f} s"
                ) from None
            if done.returncode != 0:
                raise PipelineError(f"{command[0]} {command[1]} exited {done.returncode} (its output is above)")
    out(f"step image: {image} (pass it as --step-image, or to pipeline compile --image)")
    return image


def read_from_image(image: str, *, timeout_s: float = 300.0) -> dict:
    """The record inside ``image`` (``docker run``); ``PipelineError`` if it cannot be read."""
    if not shutil.which("docker"):
        raise PipelineError(
            "--image needs docker to read the image's record",
            hint=f"or save it with: docker run --rm {image} python -m metro_e2e.pipeline.image show > record.json, "
            "and pass --image-record record.json",
        )
    command = ["docker", "run", "--rm", "--entrypoint", "python", image, "-m", "metro_e2e.pipeline.image", "show"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise PipelineError(f"docker run {image} did not end within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise PipelineError(f"cannot read the record of {image}: {(done.stderr or done.stdout).strip()[-300:]}")
    return _parse(done.stdout, f"the record of {image}")


def read_file(path: str) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read --image-record {path!r}: {exc.strerror}") from None
    return _parse(text, f"--image-record {path!r}")


def _parse(text: str, what: str) -> dict:
    try:
        found = json.loads(text)
    except ValueError:
        raise InputError(f"{what} is not JSON (write it with: python -m metro_e2e.pipeline.image show)") from None
    if not isinstance(found, dict) or "packages" not in found:
        raise InputError(f"{what} is not an image record (it has no 'packages')")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metro_e2e.pipeline.image", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="write this environment's record (the image's build does this)")
    rec.add_argument("--output", default=RECORD_PATH)
    sub.add_parser("show", help=f"print the record ({RECORD_PATH}, else this environment's)")
    chk = sub.add_parser("check", help="exit 1 if a record is outside metro-e2e's tested ranges")
    chk.add_argument("file", nargs="?", default=RECORD_PATH)
    args = parser.parse_args(argv)
    if args.action == "record":
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(record(), indent=2, sort_keys=True) + "\n")
        return 0
    if args.action == "show":
        path = Path(RECORD_PATH)
        print(path.read_text() if path.is_file() else json.dumps(record(), indent=2, sort_keys=True))
        return 0
    found = problems(read_file(args.file))
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
