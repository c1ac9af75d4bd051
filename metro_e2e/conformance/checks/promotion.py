"""``ml-models/latest/``: it holds one whole model, and a promotion replaces it without a moment a reader would load
an empty or mixed model."""

from __future__ import annotations

from dataclasses import dataclass

from metro_e2e import promotion
from metro_e2e.conformance.checks._common import fail_from, load_latest, registers
from metro_e2e.conformance.context import ClauseFailed, RunContext, Undecided, Version
from metro_e2e.errors import MetroE2EError, PromotionError
from metro_e2e.promotion.backup import back_up_latest
from metro_e2e.promotion.mlmodel import references


@registers("PRM-1", imports=("mlflow.pyfunc",))
def check_prm_1(ctx: RunContext) -> str:
    cfg = ctx.config
    storage = ctx.storage
    try:
        keys = storage.list_keys(cfg.models_bucket, cfg.latest_prefix)
        if not keys:
            raise ClauseFailed(f"a model under s3://{cfg.models_bucket}/{cfg.latest_prefix}", "nothing there")
        rel = {k[len(cfg.latest_prefix) :] for k in keys}
        if "MLmodel" not in rel:
            raise ClauseFailed("an MLmodel file in latest/", f"{len(rel)} file(s) without one")
        mlmodel = storage.get_bytes(cfg.models_bucket, cfg.latest_prefix + "MLmodel")
        try:
            referenced = references(mlmodel)
        except PromotionError as exc:
            raise ClauseFailed("a readable MLmodel file", str(exc)) from None
        missing = sorted(
            r for r in referenced if r not in rel and not any(x.startswith(r.rstrip("/") + "/") for x in rel)
        )
        if missing:
            raise ClauseFailed("every file MLmodel references", f"missing: {', '.join(missing)}")
        model = load_latest(ctx)
    except MetroE2EError as exc:
        raise fail_from(exc, "latest/ to be readable") from None
    except ClauseFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - anything load_model raises means "does not load"
        raise ClauseFailed(
            "mlflow.pyfunc.load_model to load latest/", f"{type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    ctx.shared.latest_model = model
    marker = promotion.read_marker(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
    holds = f", marker says {marker.get('name')} v{marker.get('version')}" if marker else ", no promotion marker"
    return f"{len(rel)} files, MLmodel and its references present, loads{holds}"


@registers("PRM-2")
def check_prm_2(ctx: RunContext) -> str:
    trained = ctx.shared.trained
    config, result, where = trained.config, trained.result, trained.where
    cfg = ctx.config
    storage = ctx.storage
    moments: list[Moment] = []
    try:
        old = _latest_etags(ctx)
        ctx.created.s3.append((cfg.models_bucket, ctx.namespace))
        previous = back_up_latest(
            storage,
            bucket=cfg.models_bucket,
            latest_prefix=cfg.latest_prefix,
            to_prefix=ctx.namespace + "previous-latest/",
        )
        ctx.shared.previous_latest = previous
        ctx.shared.promoting = config.model_name  # before: the run puts latest/ back whatever happens next
        done = promotion.promote_location(
            storage, where, config=cfg, observe=lambda step: moments.append(_read_latest(ctx, step))
        )
        new = {rel: etag for rel, etag in _latest_etags(ctx).items() if rel in done.files}
        state = promotion.inspect_latest(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
        source = {k[len(where.prefix) :] for k in storage.list_keys(where.bucket, where.prefix)}
    except MetroE2EError as exc:
        raise fail_from(exc, f"{config.model_name} v{result.version} to be promoted") from None
    writes = len(done.files) + 1 + (1 if done.removed else 0)  # every copy, the marker, the removal of stale files
    problems = [p for m in moments if (p := _moment_problem(m, old, new))]
    if len(moments) != writes:
        problems.append(f"latest/ could be read at only {len(moments)} of the {writes} moments of the swap")
    if set(state.files) != source:
        extra, missing = sorted(set(state.files) - source), sorted(source - set(state.files))
        problems.append(
            "at the end latest/ holds "
            + "; ".join(
                part
                for part in (
                    f"files the version lacks: {', '.join(extra)}" if extra else "",
                    f"not all of its files, missing: {', '.join(missing)}" if missing else "",
                )
                if part
            )
        )
    marker = state.marker or {}
    if not state.complete or (marker.get("name"), marker.get("version")) != (config.model_name, result.version):
        problems.append(
            f"a marker recording {config.model_name} version {result.version}, not "
            + ("; ".join(state.problems) or f"{marker.get('name')} version {marker.get('version')}")
        )
    if problems:
        raise ClauseFailed(
            f"latest/ replaced by exactly {config.model_name} v{result.version}'s files, never empty and never a mix "
            "a reader would load while that happens, and a marker recording it",
            "; ".join(problems[:4]) + (f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""),
        )
    ctx.shared.promoted = Version(config, result)  # what SRV-5 restarts serving for
    flagged = sum(1 for m in moments if m.in_progress and not _whole(m.files, old, new))
    kept = (
        f"; the previous latest/ ({previous.record.get('name')} v{previous.record.get('version')}) is put back when "
        "the run ends"
        if previous
        else "; latest/ was empty before, so this model stays"
    )
    return (
        f"latest/ now holds {config.model_name} v{result.version} ({len(done.files)} files, "
        f"{len(done.removed)} stale removed); read at each of the swap's {writes} moments: never empty, one whole "
        f"model at {writes - flagged}, at {flagged} a mix marked as a promotion under way (promotion-aware loaders "
        f"refuse it; a plain download would not){kept}"
    )


@dataclass(frozen=True)
class Moment:
    """``latest/`` right after one write of a promotion: its files' ETags and whether a promotion is under way."""

    step: str
    files: dict[str, str]
    in_progress: bool


def _latest_etags(ctx: RunContext) -> dict[str, str]:
    """relative path -> ETag of every object in ``latest/`` but the marker (one listing, nothing downloaded)."""
    cfg = ctx.config
    marker = cfg.latest_prefix + promotion.MARKER_NAME
    etags = {
        o.key[len(cfg.latest_prefix) :]: o.etag
        for o in ctx.storage.list_objects(cfg.models_bucket, cfg.latest_prefix)
        if o.key != marker
    }
    if any(not etag for etag in etags.values()):  # names alone cannot tell old files from new ones
        raise Undecided(f"S3 lists objects in s3://{cfg.models_bucket}/{cfg.latest_prefix} without ETags")
    return etags


def _read_latest(ctx: RunContext, step: str) -> Moment:
    """What a reader of ``latest/`` finds right after ``step`` (listings and the small marker/journal objects only,
    whatever the model's size)."""
    cfg = ctx.config
    files = _latest_etags(ctx)
    marker = promotion.read_marker(ctx.storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
    pending = promotion.pending(ctx.storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, marker=marker)
    return Moment(step, files, bool(pending))


def _whole(files: dict, old: dict, new: dict) -> bool:
    """One model's files are all there with that model's content (files only the other has are unreferenced)."""
    return any(model and all(files.get(rel) == etag for rel, etag in model.items()) for model in (old, new))


def _moment_problem(moment: Moment, old: dict, new: dict) -> str | None:
    """Why ``latest/`` at ``moment`` breaks the promise (empty, or a mix nothing marks as under way), or None."""
    if not moment.files:
        return f"latest/ was empty after {moment.step}"
    if _whole(moment.files, old, new) or moment.in_progress:
        return None  # one whole model, or a mix every reader that follows the promotion protocol refuses
    fresh = sum(1 for rel, etag in moment.files.items() if new.get(rel) == etag)
    return (
        f"after {moment.step} latest/ held {fresh} new and {len(moment.files) - fresh} other file(s) with nothing "
        "marking the promotion as under way: a reader would load the mix"
    )
