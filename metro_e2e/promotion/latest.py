"""What a reader of ``ml-models/latest/`` finds: its marker, the journals of promotions into it that have not
finished, whether its files are one whole model, and a download that refuses anything else (the serving pod's
loader). The promotion protocol that writes ``latest/`` is in ``promotion/__init__.py``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from metro_e2e.errors import PromotionError
from metro_e2e.storage import Storage, sha256_hex

log = logging.getLogger(__name__)

MARKER_NAME = ".metro-e2e-promotion.json"
STAGING_ROOT = ".metro-e2e-staging/"
JOURNAL_SUFFIX = ".journal.json"
MLMODEL = "MLmodel"


@dataclass(frozen=True)
class LatestState:
    """What ``latest/`` holds now, compared with its marker."""

    files: dict[str, str]  # relative path -> sha256 of the current content
    marker: dict | None
    problems: list[str]

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def files_match_marker(self) -> bool:
        """The files are exactly the ones the marker lists, with its digests (one whole model)."""
        return self.marker is not None and self.marker.get("files") == self.files


def file_digests(storage: Storage, bucket: str, prefix: str) -> dict[str, str]:
    """relative path -> SHA-256 of every object under ``prefix`` except the promotion marker."""
    keys = [k for k in storage.list_keys(bucket, prefix) if k != prefix + MARKER_NAME]
    return {k[len(prefix) :]: sha256_hex(storage.get_bytes(bucket, k)) for k in keys}


def journals(storage: Storage, *, bucket: str, latest_prefix: str) -> list[dict]:
    """Every promotion into ``latest_prefix`` that has a journal (unfinished, or superseded), oldest first."""
    found = []
    for key in storage.list_keys(bucket, STAGING_ROOT):
        if not key.endswith(JOURNAL_SUFFIX) or "/" in key[len(STAGING_ROOT) :]:
            continue
        body = storage.get_bytes_or_none(bucket, key)
        if body is None:
            continue  # finished and deleted since the listing
        journal = _json_or_none(body)
        if journal is None:
            log.warning("ignoring unreadable promotion journal s3://%s/%s", bucket, key)
            continue
        if journal.get("latest_prefix") == latest_prefix:
            found.append(dict(journal, key=key))
    return sorted(found, key=lambda j: j.get("started_at", ""))


def pending(storage: Storage, *, bucket: str, latest_prefix: str, marker: dict | None) -> list[dict]:
    """Journals of promotions that started after the one ``latest/``'s marker records: unfinished, oldest first."""
    done = (marker or {}).get("started_at", "")
    return [j for j in journals(storage, bucket=bucket, latest_prefix=latest_prefix) if j.get("started_at", "") > done]


def whole_models(marker: dict | None, unfinished: list[dict]) -> list[dict[str, str]]:
    """The file sets that are one complete model: the marker's, each unfinished promotion's, and what ``latest/``
    held before the first of them started (which may have had no marker)."""
    models = [j["files"] for j in unfinished]
    if marker and marker.get("files"):
        models.append(marker["files"])
    if unfinished and unfinished[0].get("previous"):
        models.append(unfinished[0]["previous"])
    return models


def read_marker(storage: Storage, *, bucket: str, latest_prefix: str) -> dict | None:
    """The promotion marker in ``latest_prefix``; None if there is none or it is not JSON (without reading the model)."""
    return _json_or_none(storage.get_bytes_or_none(bucket, latest_prefix + MARKER_NAME))


def inspect_latest(storage: Storage, *, bucket: str, latest_prefix: str) -> LatestState:
    """Read ``latest/`` and its marker; list every way they disagree (empty, missing, extra, changed)."""
    files = file_digests(storage, bucket, latest_prefix)
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
    for journal in pending(storage, bucket=bucket, latest_prefix=latest_prefix, marker=marker):
        problems.append(
            f"a promotion of {journal.get('name')} version {journal.get('version')} started at "
            f"{journal.get('started_at')} has not finished (in progress, or interrupted: finish it with "
            "`python -m metro_e2e.steps.promote --recover`)"
        )
    return LatestState(files=files, marker=marker, problems=problems)


def download_latest(storage: Storage, *, bucket: str, latest_prefix: str, dest) -> list[str]:
    """Download every object under ``latest_prefix`` into folder ``dest``, as the serving pod does at start."""
    root = Path(dest)
    keys = storage.list_keys(bucket, latest_prefix)
    if not keys:
        raise PromotionError(f"s3://{bucket}/{latest_prefix} is empty: there is no model to serve")
    written, got, marker_text = [], {}, None
    for key in keys:
        rel = key[len(latest_prefix) :]
        target = (root / rel).resolve()
        if root.resolve() not in target.parents:
            raise PromotionError(f"refusing to download {key!r}: it would land outside {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        body = storage.get_bytes(bucket, key)
        target.write_bytes(body)
        written.append(rel)
        if rel == MARKER_NAME:
            marker_text = body
        else:
            got[rel] = sha256_hex(body)
    marker = _json_or_none(marker_text)
    unfinished = pending(storage, bucket=bucket, latest_prefix=latest_prefix, marker=marker)
    if unfinished and got not in whole_models(marker, unfinished):
        last = unfinished[-1]
        raise PromotionError(
            f"s3://{bucket}/{latest_prefix} holds old and new files: the promotion of {last.get('name')} version "
            f"{last.get('version')} (started {last.get('started_at')}) has not finished; not loading a mixed model",
            hint="finish it with: python -m metro_e2e.steps.promote --recover",
        )
    return written


def _json_or_none(text: bytes | None) -> dict | None:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
