"""The results bundle: one archive a CI job attaches to a platform change, and reading a run back from it.

``metro-e2e check --bundle PATH.tar.gz`` writes (``write``) a gzipped tar of flat names::

    manifest.json     format, suite version, run id, and every other file's sha256 and size
    report.json       the JSON report (report.schema.json)
    junit.xml         the JUnit file
    report.html       the HTML page (html.py)
    config.json       every setting as resolved (secrets masked) and the check's options
    versions.json     what was found: the platform's versions, and this environment's (Python, packages)
    evidence/*.jsonl  request/response excerpts, one file per clause
    stack-logs/*.log  against the local stack: each service's log

Every file is masked with the run's secrets before it is written. ``load`` reads a bundle, or a bare JSON report,
into a ``Loaded`` run without a platform: a bundle whose manifest does not match its files (one missing, one
added, one changed) is refused, and so is a report that is not one (``InputError``, naming the file and the fix).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from metro_e2e import __version__
from metro_e2e.errors import InputError

FORMAT = "metro-e2e-bundle/1"
MANIFEST = "manifest.json"
REQUIRED = ("report.json", "junit.xml", "config.json", "versions.json")  # every bundle has these
SUFFIXES = (".tar.gz", ".tgz")
MAX_BYTES = 1024 * 2**20  # a bundle whose files add up to more than this is not one metro-e2e wrote


@dataclass
class Loaded:
    """A run read back: its report and, from a bundle, every other file (name -> bytes) and the manifest."""

    source: str
    report: dict
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: dict | None = None

    @property
    def is_bundle(self) -> bool:
        return self.manifest is not None

    def evidence(self) -> dict[str, list[dict]]:
        """Each clause's evidence records (clause id -> records), from the bundle's ``evidence/`` files."""
        return evidence_records(self.files)


EVIDENCE = "evidence/"  # the bundle's folder of evidence files, ``evidence/<clause>.jsonl``


def evidence_records(files: Mapping[str, bytes]) -> dict[str, list[dict]]:
    """``{clause id: [record, ...]}`` from the bundle names ``evidence/<clause>.jsonl`` among ``files`` (others, the
    stack's logs among them, are left out; a line that is not a JSON object is kept as its text)."""
    out: dict[str, list[dict]] = {}
    for name, data in sorted(files.items()):
        clause = name.removeprefix(EVIDENCE)
        if clause == name or not clause.endswith(".jsonl") or "/" in clause:
            continue
        for line in data.decode("utf-8", errors="replace").splitlines():
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):  # not a record metro-e2e wrote: shown as its text
                    record = {"note": line}
                out.setdefault(clause.removesuffix(".jsonl"), []).append(record)
    return out


def folder_files(folder: str | Path | None, prefix: str) -> dict[str, bytes]:
    """Every file under ``folder`` as ``{prefix + relative path: bytes}`` (none when it is not there)."""
    if not folder or not Path(folder).is_dir():
        return {}
    root = Path(folder)
    return {f"{prefix}{p.relative_to(root).as_posix()}": p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: str | Path, files: Mapping[str, bytes], *, report: dict, mask: Callable[[str], str] = str) -> Path:
    """Write the bundle at ``path``: ``files`` (name -> bytes; ``REQUIRED`` among them) masked, and the manifest.

    Written beside the target and renamed into place, so a reader never sees half a bundle."""
    missing = [name for name in REQUIRED if name not in files]
    if missing:
        raise ValueError(f"a bundle needs {', '.join(missing)}")
    masked = {name: mask(data.decode("utf-8", errors="replace")).encode() for name, data in sorted(files.items())}
    manifest = {
        "format": FORMAT,
        "suite_version": __version__,
        "run_id": report["run_id"],
        "catalogue_version": report["catalogue_version"],
        "files": {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in masked.items()},
    }

    def pack(partial: Path) -> None:
        with tarfile.open(partial, "w:gz") as tar:
            for name, data in [(MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode()), *masked.items()]:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))

    from metro_e2e.conformance.report import write_atomically

    return write_atomically(path, pack, what="the bundle", option="--bundle")


def load(path: str | Path) -> Loaded:
    """The run in ``path``: a bundle (``.tar.gz``/``.tgz``, its manifest verified) or a JSON report."""
    source = Path(path)
    if not source.is_file():
        raise InputError(
            f"{str(source)!r} does not exist",
            hint="give a bundle (check --bundle) or a JSON report (check --report-json)",
        )
    if source.name.endswith(SUFFIXES) or tarfile.is_tarfile(source):
        files, manifest = _read_bundle(source)
        report = _parse_report(files["report.json"], f"{source}: report.json")
        return Loaded(str(source), report, {n: b for n, b in files.items() if n != "report.json"}, manifest)
    return Loaded(str(source), _parse_report(source.read_bytes(), str(source)))


def _read_bundle(source: Path) -> tuple[dict[str, bytes], dict]:
    def refuse(why: str) -> InputError:
        return InputError(
            f"bundle {str(source)!r} is not intact: {why}",
            hint="use the archive check --bundle wrote, unchanged (re-run the check to make a new one)",
        )

    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                if not member.isfile() or member.name.startswith("/") or ".." in member.name.split("/"):
                    raise refuse(f"it holds {member.name!r}, which is not a plain file inside the bundle")
                if member.name in files:
                    raise refuse(f"{member.name!r} is in it twice")
                total += member.size
                if total > MAX_BYTES:
                    raise refuse(f"its files add up to more than {MAX_BYTES // 2**20} MiB")
                files[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise refuse(f"it cannot be read as a gzipped tar ({exc})") from None
    if MANIFEST not in files:
        raise refuse(f"it has no {MANIFEST}")
    try:
        manifest = json.loads(files.pop(MANIFEST))
        listed = manifest["files"]
        if manifest.get("format") != FORMAT or not isinstance(listed, dict):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise refuse(f"its {MANIFEST} is not a {FORMAT} manifest") from None
    for name in REQUIRED:
        if name not in listed:
            raise refuse(f"its manifest does not list {name}, which every bundle has")
    for name, entry in sorted(listed.items()):
        if name not in files:
            raise refuse(f"{name} is listed in the manifest but missing from the archive")
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        digest = _sha256(files[name])
        if digest != expected:
            raise refuse(f"{name}'s sha256 is {digest}, the manifest says {expected}")
    extra = sorted(set(files) - set(listed))
    if extra:
        raise refuse(f"{extra[0]} is in the archive but not in its manifest")
    return files, manifest


def _parse_report(data: bytes, where: str) -> dict:
    """The JSON report in ``data``, validated against report.schema.json."""
    import jsonschema

    from metro_e2e.conformance.report import SCHEMA

    hint = "give a report metro-e2e check wrote (--report-json) or a bundle (--bundle)"
    try:
        report = json.loads(data)
    except ValueError as exc:
        raise InputError(f"{where} is not JSON ({exc})", hint=hint) from None
    try:
        jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    except jsonschema.ValidationError as exc:
        at = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise InputError(f"{where} is not a metro-e2e report: at {at}, {exc.message}", hint=hint) from None
    return report
