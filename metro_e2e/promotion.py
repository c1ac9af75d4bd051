"""Promote a registered model version to ``ml-models/latest/``, which the serving pod loads.

The replacement runs in three phases so a reader never finds ``latest/``
empty or holding a half-copied file:

1. **stage**: every source file is read, hashed and written under a private
   staging prefix; a failure here leaves ``latest/`` untouched;
2. **swap**: staged files are copied server-side over ``latest/`` (``MLmodel``
   last, then the marker object recording name, version, source URI and
   per-file SHA-256);
3. **clean**: files of the previous model that the new one lacks are deleted,
   then the staging prefix.

S3 makes each object write atomic, not a set of writes: during the swap a
reader may see some new and some old files. The marker lets a reader tell
(``inspect_latest`` compares it with what is there); the serving pod only
reads ``latest/`` when restarted, after promotion has finished.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from metro_e2e.config import MetroConfig
from metro_e2e.errors import PromotionError
from metro_e2e.registry import VersionLocation, locate_version
from metro_e2e.storage import Storage, sha256_hex

log = logging.getLogger(__name__)

MARKER_NAME = ".metro-e2e-promotion.json"
STAGING_ROOT = ".metro-e2e-staging/"
MLMODEL = "MLmodel"


@dataclass(frozen=True)
class PromotionResult:
    """What a promotion put in ``latest/``."""

    name: str
    version: str
    source_uri: str
    bucket: str
    latest_prefix: str
    files: dict[str, str]  # relative path -> sha256
    removed: list[str] = field(default_factory=list)

    @property
    def marker_key(self) -> str:
        return self.latest_prefix + MARKER_NAME


@dataclass(frozen=True)
class LatestState:
    """What ``latest/`` holds now, compared with its marker."""

    files: dict[str, str]  # relative path -> sha256 of the current content
    marker: dict | None
    problems: list[str]

    @property
    def complete(self) -> bool:
        return not self.problems


def promote(
    config: MetroConfig, *, name: str | None = None, version: str = "latest", storage: Storage | None = None
) -> PromotionResult:
    """Promote ``name`` (default ``config.model_name``) version ``version`` to ``config.latest_prefix``."""
    location = locate_version(config, name or config.model_name, version)
    return promote_location(storage or Storage(config), location, config=config)


def promote_location(storage: Storage, location: VersionLocation, *, config: MetroConfig) -> PromotionResult:
    """Copy the files at ``location`` to ``latest/`` of the models bucket (stage, swap, clean)."""
    bucket, latest = config.models_bucket, config.latest_prefix
    if location.bucket != bucket:
        raise PromotionError(
            f"{location.name} version {location.version} is stored in bucket {location.bucket!r}, "
            f"but latest/ lives in {bucket!r}",
            hint="set METRO_MODELS_BUCKET to the bucket MLflow stores artifacts in",
        )
    return copy_to_latest(
        storage,
        bucket=bucket,
        source_prefix=location.prefix,
        latest_prefix=latest,
        record={"name": location.name, "version": location.version, "source_uri": location.source_uri},
    )


def copy_to_latest(
    storage: Storage, *, bucket: str, source_prefix: str, latest_prefix: str, record: dict
) -> PromotionResult:
    """Replace everything under ``latest_prefix`` with the files under ``source_prefix``."""
    what = f"{record.get('name')} version {record.get('version')}"
    if (
        not source_prefix.endswith("/")
        or source_prefix.startswith(latest_prefix)
        or latest_prefix.startswith(source_prefix)
    ):
        raise PromotionError(f"cannot promote {what}: source prefix {source_prefix!r} overlaps {latest_prefix!r}")
    sources = storage.list_keys(bucket, source_prefix)
    relative = {key[len(source_prefix) :]: key for key in sources if key[len(source_prefix) :]}
    if not relative:
        raise PromotionError(
            f"found no files for {what} under s3://{bucket}/{source_prefix}; latest/ was not changed",
            hint="the version's artifacts are missing or the registry points elsewhere",
        )
    if MLMODEL not in relative:
        raise PromotionError(f"{what} under s3://{bucket}/{source_prefix} has no MLmodel file; latest/ was not changed")
    if MARKER_NAME in relative:
        raise PromotionError(f"{what} contains a file named {MARKER_NAME}, which promotion reserves")

    staging = f"{STAGING_ROOT}{uuid.uuid4().hex}/"
    try:
        digests = _stage(storage, bucket, relative, staging)
        previous = set(storage.list_keys(bucket, latest_prefix))
        for rel in sorted(digests, key=lambda r: (r == MLMODEL, r)):
            storage.copy(bucket, staging + rel, latest_prefix + rel)
        marker = dict(record, files=digests, promoted_at=datetime.now(UTC).isoformat(timespec="seconds"))
        storage.put_bytes(bucket, latest_prefix + MARKER_NAME, json.dumps(marker, indent=2, sort_keys=True).encode())
        keep = {latest_prefix + rel for rel in digests} | {latest_prefix + MARKER_NAME}
        stale = sorted(previous - keep)
        storage.delete_keys(bucket, stale)
    finally:
        storage.delete_prefix(bucket, staging)
    log.info(
        "promoted %s: %d files to s3://%s/%s, %d stale removed", what, len(digests), bucket, latest_prefix, len(stale)
    )
    return PromotionResult(
        name=str(record.get("name")),
        version=str(record.get("version")),
        source_uri=str(record.get("source_uri")),
        bucket=bucket,
        latest_prefix=latest_prefix,
        files=digests,
        removed=[k[len(latest_prefix) :] for k in stale],
    )


def _stage(storage: Storage, bucket: str, relative: dict[str, str], staging: str) -> dict[str, str]:
    digests = {}
    for rel, key in sorted(relative.items()):
        data = storage.get_bytes(bucket, key)
        digests[rel] = sha256_hex(data)
        storage.put_bytes(bucket, staging + rel, data, metadata={"sha256": digests[rel]})
    return digests


def inspect_latest(storage: Storage, *, bucket: str, latest_prefix: str) -> LatestState:
    """Read ``latest/`` and its marker; list every way they disagree (empty, missing, extra, changed)."""
    keys = [k for k in storage.list_keys(bucket, latest_prefix) if k != latest_prefix + MARKER_NAME]
    files = {k[len(latest_prefix) :]: sha256_hex(storage.get_bytes(bucket, k)) for k in keys}
    problems: list[str] = []
    marker = None
    if not files:
        problems.append(f"s3://{bucket}/{latest_prefix} is empty")
    elif MLMODEL not in files:
        problems.append(f"s3://{bucket}/{latest_prefix} has no MLmodel file")
    try:
        marker = json.loads(storage.get_bytes(bucket, latest_prefix + MARKER_NAME))
    except Exception as exc:  # noqa: BLE001 - a missing or unreadable marker is reported, not raised
        problems.append(f"no readable promotion marker ({type(exc).__name__})")
    if marker is not None:
        expected = marker.get("files", {})
        missing = sorted(set(expected) - set(files))
        extra = sorted(set(files) - set(expected))
        changed = sorted(r for r in set(expected) & set(files) if expected[r] != files[r])
        for label, items in (("missing", missing), ("not in the marker", extra), ("changed since promotion", changed)):
            if items:
                problems.append(f"{len(items)} file(s) {label}: {', '.join(items[:5])}")
    return LatestState(files=files, marker=marker, problems=problems)


def download_latest(storage: Storage, *, bucket: str, latest_prefix: str, dest) -> list[str]:
    """Download every object under ``latest_prefix`` into folder ``dest``, as the serving pod does at start."""
    root = Path(dest)
    keys = storage.list_keys(bucket, latest_prefix)
    if not keys:
        raise PromotionError(f"s3://{bucket}/{latest_prefix} is empty: there is no model to serve")
    written = []
    for key in keys:
        rel = key[len(latest_prefix) :]
        target = (root / rel).resolve()
        if root.resolve() not in target.parents:
            raise PromotionError(f"refusing to download {key!r}: it would land outside {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.get_bytes(bucket, key))
        written.append(rel)
    return written
