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

Interruptions:

- before the swap (staging, or between stage and swap), ``latest/`` is
  untouched: the old model, complete;
- SIGTERM, SIGINT or SIGHUP during the swap (what Kubernetes, Argo and Ctrl-C
  send) are held until the swap and the marker are written (a few server-side
  copies), then take effect: the new model, complete;
- a kill that cannot be held (SIGKILL: OOM, node loss) or an S3 failure during
  the swap can leave old and new files mixed. A journal object written before
  the swap (``.metro-e2e-staging/<id>.journal.json``, next to the staged copy)
  records what was being promoted and what ``latest/`` held: ``inspect_latest``
  reports it, ``download_latest`` (the serving pod's loader) refuses to load
  anything but one whole model, and ``recover``
  (``python -m metro_e2e.steps.promote --recover``) finishes the swap from the
  staged copy. The marker names its promotion (``started_at``), so a journal
  older than it was superseded by a later promotion, not left unfinished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from metro_e2e.config import MetroConfig
from metro_e2e.errors import MetroE2EError, PromotionError
from metro_e2e.promotion.latest import (
    JOURNAL_SUFFIX,
    MARKER_NAME,
    MLMODEL,
    STAGING_ROOT,
    LatestState,
    download_latest,
    file_digests,
    inspect_latest,
    journals,
    pending,
    read_marker,
    whole_models,
)
from metro_e2e.storage import Storage, sha256_hex

if TYPE_CHECKING:
    from metro_e2e.registry import VersionLocation

__all__ = [  # what readers of latest/ use is in latest.py; promote() and the rest of the protocol here
    "JOURNAL_SUFFIX",
    "MARKER_NAME",
    "MLMODEL",
    "STAGING_ROOT",
    "LatestState",
    "PromotionResult",
    "copy_to_latest",
    "discard",
    "download_latest",
    "inspect_latest",
    "journals",
    "pending",
    "promote",
    "promote_location",
    "read_marker",
    "recover",
    "whole_models",
]

log = logging.getLogger(__name__)

HELD_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGALRM")  # SIGALRM: a conformance check's time budget
SUPERSEDED_AFTER_S = 3600  # a superseded journal this old cannot belong to a promotion still running


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


def promote(
    config: MetroConfig, *, name: str | None = None, version: str = "latest", storage: Storage | None = None
) -> PromotionResult:
    """Promote ``name`` (default ``config.model_name``) version ``version`` to ``config.latest_prefix``."""
    from metro_e2e.registry import locate_version  # MLflow: only promote() asks the registry

    location = locate_version(config, name or config.model_name, version)
    return promote_location(storage or Storage(config), location, config=config)


def promote_location(
    storage: Storage, location: VersionLocation, *, config: MetroConfig, observe: Observer | None = None
) -> PromotionResult:
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
        observe=observe,
    )


Observer = Callable[[str], None]  # called with what was just done, after every write into latest/ (see PRM-2)


def copy_to_latest(
    storage: Storage,
    *,
    bucket: str,
    source_prefix: str,
    latest_prefix: str,
    record: dict,
    observe: Observer | None = None,
) -> PromotionResult:
    """Replace everything under ``latest_prefix`` with the files under ``source_prefix``.

    ``observe``, if given, is called after each write into ``latest/`` (each copy, the marker, the removal of stale
    files), so a caller can read ``latest/`` at every moment of the swap; what it raises is logged, never lets the
    swap stop half-way.
    """
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
    journal_key = _journal_key(staging)
    try:
        digests = _stage(storage, bucket, relative, staging)
        journal = dict(
            record,
            latest_prefix=latest_prefix,
            staging=staging,
            files=digests,
            previous=file_digests(storage, bucket, latest_prefix),
            started_at=datetime.now(UTC).isoformat(timespec="microseconds"),
        )
        storage.put_bytes(bucket, journal_key, json.dumps(journal, indent=2, sort_keys=True).encode())
    except BaseException:
        storage.delete_keys(bucket, [journal_key])  # latest/ was not touched: nothing to recover
        storage.delete_prefix(bucket, staging)
        raise
    with _signals_held(f"the swap of {what} into s3://{bucket}/{latest_prefix}"):
        try:
            stale = _swap(storage, bucket, journal, observe)
        except Exception as exc:
            raise PromotionError(
                f"promotion of {what} failed during the swap: s3://{bucket}/{latest_prefix} may hold old and new "
                f"files ({exc})",
                hint="finish it with: python -m metro_e2e.steps.promote --recover",
            ) from exc
        _forget(storage, bucket, journal)
    _collect_superseded(storage, bucket, latest_prefix, before=journal["started_at"])
    log.info(
        "promoted %s: %d files to s3://%s/%s, %d stale removed", what, len(digests), bucket, latest_prefix, len(stale)
    )
    return _result(journal, bucket, stale)


def _result(journal: dict, bucket: str, stale: list[str]) -> PromotionResult:
    latest_prefix = journal["latest_prefix"]
    return PromotionResult(
        name=str(journal.get("name")),
        version=str(journal.get("version")),
        source_uri=str(journal.get("source_uri")),
        bucket=bucket,
        latest_prefix=latest_prefix,
        files=journal["files"],
        removed=[k[len(latest_prefix) :] for k in stale],
    )


def _journal_key(staging: str) -> str:
    return staging.rstrip("/") + JOURNAL_SUFFIX


def _swap(storage: Storage, bucket: str, journal: dict, observe: Observer | None = None) -> list[str]:
    """Copy the staged files over ``latest/`` (MLmodel last), write the marker, delete stale files.

    Idempotent: ``recover`` runs it again from the same journal.
    """

    def after(step: str) -> None:
        if observe is not None:
            try:
                observe(step)
            except Exception as exc:  # noqa: BLE001 - an observer must never leave latest/ half-swapped
                log.warning("promotion observer failed after %s: %s", step, exc)

    latest_prefix, staging, digests = journal["latest_prefix"], journal["staging"], journal["files"]
    previous = set(storage.list_keys(bucket, latest_prefix))
    for rel in sorted(digests, key=lambda r: (r == MLMODEL, r)):
        storage.copy(bucket, staging + rel, latest_prefix + rel)
        after(f"copying {rel}")
    record = {k: journal[k] for k in ("name", "version", "source_uri") if k in journal}
    marker = dict(
        record,
        files=digests,
        started_at=journal["started_at"],  # which promotion this is: older unfinished journals are superseded
        promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    storage.put_bytes(bucket, latest_prefix + MARKER_NAME, json.dumps(marker, indent=2, sort_keys=True).encode())
    after("writing the marker")
    keep = {latest_prefix + rel for rel in digests} | {latest_prefix + MARKER_NAME}
    stale = sorted(previous - keep)
    if stale:
        storage.delete_keys(bucket, stale)
        after(f"deleting {len(stale)} stale file(s)")
    return stale


@contextlib.contextmanager
def _signals_held(what: str) -> Iterator[None]:
    """Hold SIGTERM/SIGINT/SIGHUP until the block ends, then deliver the first one received."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can set handlers; a library caller in a thread owns its signals
        return
    received: list[int] = []

    def hold(signum, _frame) -> None:
        received.append(signum)  # first: a handler may interrupt a write to stderr, so record before writing
        if signum != getattr(signal, "SIGALRM", None) and received.count(signum) == 1:
            _say(f"promote: {signal.Signals(signum).name} received during {what}: finishing it first")

    held = [getattr(signal, name) for name in HELD_SIGNALS if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, hold) for sig in held}
    try:
        yield
    except BaseException as exc:
        if received:  # the signal below replaces this exception: say it first, or it is lost
            _say(f"promote: error: {exc}")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:  # an interrupt outranks a check's time budget (SIGALRM): it ends the whole run
            alarm = getattr(signal, "SIGALRM", None)
            signal.raise_signal(next((sig for sig in received if sig != alarm), received[0]))


def _say(line: str) -> None:
    os.write(2, (line + "\n").encode(errors="replace"))  # not print: safe inside a signal handler


def _forget(storage: Storage, bucket: str, journal: dict) -> None:
    """Drop one finished promotion's journal, then its staged copy."""
    storage.delete_keys(bucket, [journal["key"] if "key" in journal else _journal_key(journal["staging"])])
    storage.delete_prefix(bucket, journal["staging"])


def discard(storage: Storage, *, bucket: str, latest_prefix: str, name: str) -> int:
    """Drop the journals and staged copies of ``name``'s promotions into ``latest_prefix``: for a caller that has
    just put back what ``latest/`` held before them (promote mode's restore). Returns how many were dropped."""
    dropped = [j for j in journals(storage, bucket=bucket, latest_prefix=latest_prefix) if j.get("name") == name]
    for journal in dropped:
        _forget(storage, bucket, journal)
    return len(dropped)


def _collect_superseded(storage: Storage, bucket: str, latest_prefix: str, *, before: str) -> None:
    """Best effort: drop journals (and staged copies) that a later promotion superseded, once they are old enough
    that they cannot belong to a promotion still running."""
    cutoff = (datetime.now(UTC) - timedelta(seconds=SUPERSEDED_AFTER_S)).isoformat(timespec="microseconds")
    try:
        for journal in journals(storage, bucket=bucket, latest_prefix=latest_prefix):
            started = journal.get("started_at", "")
            if started < before and started < cutoff:
                _forget(storage, bucket, journal)
    except MetroE2EError as exc:
        log.warning("could not drop superseded promotion journals: %s", exc)


def recover(storage: Storage, *, bucket: str, latest_prefix: str) -> PromotionResult | None:
    """Finish the newest unfinished promotion into ``latest_prefix`` from its staged copy; None if there is none.

    Meant for a promotion that was killed: run it while another promotion into the same ``latest/`` is still
    running and the two race, as two promotions always do.
    """
    marker = read_marker(storage, bucket=bucket, latest_prefix=latest_prefix)
    unfinished = pending(storage, bucket=bucket, latest_prefix=latest_prefix, marker=marker)
    if not unfinished:
        return None
    journal = unfinished[-1]
    what = f"{journal.get('name')} version {journal.get('version')}"
    for rel, digest in journal["files"].items():
        try:
            data = storage.get_bytes(bucket, journal["staging"] + rel)
        except MetroE2EError as exc:
            raise PromotionError(
                f"cannot finish the promotion of {what}: its staged copy is incomplete ({exc})",
                hint="promote a version again: python -m metro_e2e.steps.promote --version N",
            ) from exc
        if sha256_hex(data) != digest:
            raise PromotionError(
                f"cannot finish the promotion of {what}: staged file {rel} changed since staging",
                hint="promote a version again: python -m metro_e2e.steps.promote --version N",
            )
    with _signals_held(f"the recovery of {what}"):
        stale = _swap(storage, bucket, journal)
        _forget(storage, bucket, journal)
    _collect_superseded(storage, bucket, latest_prefix, before=journal["started_at"])
    log.info("recovered the promotion of %s into s3://%s/%s", what, bucket, latest_prefix)
    return _result(journal, bucket, stale)


def _stage(storage: Storage, bucket: str, relative: dict[str, str], staging: str) -> dict[str, str]:
    digests = {}
    for rel, key in sorted(relative.items()):
        data = storage.get_bytes(bucket, key)
        digests[rel] = sha256_hex(data)
        storage.put_bytes(bucket, staging + rel, data, metadata={"sha256": digests[rel]})
    return digests
