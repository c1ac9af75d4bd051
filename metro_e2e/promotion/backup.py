"""Keep and put back what ``latest/`` held around a promotion that must not last (the conformance check's PRM-2).

``back_up_latest`` copies ``latest/`` (and what its marker records) to a prefix of the models bucket;
``restore_latest`` puts it back when ``latest/`` holds the promoted model or a promotion of it that did not
finish, and leaves ``latest/`` alone when the promotion never changed it, or when someone else promoted since
(then the copy is kept and named).
"""

from __future__ import annotations

from dataclasses import dataclass

from metro_e2e import promotion
from metro_e2e.errors import MetroE2EError
from metro_e2e.storage import Storage


@dataclass(frozen=True)
class Backup:
    """A copy of ``latest/``: where it is (a prefix of the models bucket), what it held, and its marker then."""

    prefix: str
    record: dict  # name, version and source_uri of the model latest/ held
    marker: dict | None


def back_up_latest(storage: Storage, *, bucket: str, latest_prefix: str, to_prefix: str) -> Backup | None:
    """Copy what ``latest/`` holds (the marker aside) to ``to_prefix``; None when ``latest/`` is empty."""
    marker_key = latest_prefix + promotion.MARKER_NAME
    keys = [k for k in storage.list_keys(bucket, latest_prefix) if k != marker_key]
    if not keys:
        return None
    for key in keys:
        storage.copy(bucket, key, to_prefix + key[len(latest_prefix) :])
    marker = promotion.read_marker(storage, bucket=bucket, latest_prefix=latest_prefix) or {}
    record = {
        "name": marker.get("name", "the model served before the check"),
        "version": marker.get("version", "unknown"),
        "source_uri": marker.get("source_uri", f"s3://{bucket}/{latest_prefix}"),
    }
    return Backup(to_prefix, record, marker or None)


def restore_latest(
    storage: Storage, backup: Backup, *, bucket: str, latest_prefix: str, name: str
) -> tuple[list[str], str | None, bool]:
    """Put ``backup`` back into ``latest/`` if ``latest/`` holds the model ``name`` promoted (or a promotion of it
    that did not finish). Returns what to report, the backup prefix to keep (None: it may be deleted), and whether
    ``latest/`` was put back."""
    where = f"s3://{bucket}/{latest_prefix}"
    what = f"{backup.record['name']} v{backup.record['version']}"
    kept = f"its copy is kept at s3://{bucket}/{backup.prefix}"
    try:
        marker = promotion.read_marker(storage, bucket=bucket, latest_prefix=latest_prefix)
        unfinished = promotion.pending(storage, bucket=bucket, latest_prefix=latest_prefix, marker=marker)
        ours = (marker or {}).get("name") == name or any(j.get("name") == name for j in unfinished)
        if not ours and marker == backup.marker and _same_files(storage, bucket, latest_prefix, backup.prefix):
            return [], None, False  # the promotion failed before it changed latest/
        if not ours and marker != backup.marker:
            return (
                [
                    f"{where} holds {(marker or {}).get('name')} v{(marker or {}).get('version')} at the end, not the "
                    f"check's model (someone else promoted during the run): {what} was not put back; {kept}"
                ],
                backup.prefix,
                False,
            )
        promotion.copy_to_latest(
            storage, bucket=bucket, source_prefix=backup.prefix, latest_prefix=latest_prefix, record=backup.record
        )
        promotion.discard(storage, bucket=bucket, latest_prefix=latest_prefix, name=name)
    except MetroE2EError as exc:
        return (
            [f"{where} may still hold the check's model: putting {what} back failed ({exc.message}); {kept}"],
            backup.prefix,
            False,
        )
    return [], None, True


def _same_files(storage: Storage, bucket: str, prefix: str, other: str) -> bool:
    """Whether two prefixes of ``bucket`` hold the same files (names and ETags; the marker aside)."""

    def files(at: str) -> dict[str, str]:
        listed = storage.list_objects(bucket, at)
        return {o.key[len(at) :]: o.etag for o in listed if not o.key.endswith(promotion.MARKER_NAME)}

    here = files(prefix)
    return bool(here) and all(here.values()) and here == files(other)
