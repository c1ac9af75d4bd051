"""Promotion: exact key sets, stale removal, the marker, >1,000 keys, no empty moment, no silent success."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metro_e2e import promotion
from metro_e2e.errors import PromotionError, StorageError
from metro_e2e.promotion import MARKER_NAME, copy_to_latest, inspect_latest
from metro_e2e.storage import Storage

RECORD = {"name": "iris-model", "version": "7", "source_uri": "s3://ml-models/1/abc/artifacts/iris-model"}


def _put_model(storage: Storage, prefix: str, files: dict[str, bytes]) -> None:
    for rel, body in files.items():
        storage.put_bytes("ml-models", prefix + rel, body)


def _latest(storage: Storage) -> dict[str, bytes]:
    return {k[len("latest/") :]: storage.get_bytes("ml-models", k) for k in storage.list_keys("ml-models", "latest/")}


MODEL_V1 = {"MLmodel": b"flavors: v1", "model.pkl": b"v1-weights", "old-only.txt": b"stale"}
MODEL_V2 = {"MLmodel": b"flavors: v2", "model.pkl": b"v2-weights", "conda.yaml": b"deps"}


def test_promotion_replaces_latest_and_removes_stale(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    _put_model(storage, "1/run1/artifacts/iris-model/", MODEL_V1)
    _put_model(storage, "1/models/m-abc/artifacts/", MODEL_V2)
    copy_to_latest(
        storage,
        bucket="ml-models",
        source_prefix="1/run1/artifacts/iris-model/",
        latest_prefix="latest/",
        record=dict(RECORD, version="1"),
    )
    result = copy_to_latest(
        storage, bucket="ml-models", source_prefix="1/models/m-abc/artifacts/", latest_prefix="latest/", record=RECORD
    )
    latest = _latest(storage)
    marker = json.loads(latest.pop(MARKER_NAME))
    assert latest == MODEL_V2
    assert result.removed == ["old-only.txt"]
    assert marker["version"] == "7" and marker["source_uri"] == RECORD["source_uri"]
    assert set(marker["files"]) == set(MODEL_V2)
    state = inspect_latest(storage, bucket="ml-models", latest_prefix="latest/")
    assert state.complete, state.problems
    assert storage.list_keys("ml-models", promotion.STAGING_ROOT) == []


def test_promotion_of_nothing_is_an_error_and_leaves_latest_alone(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    _put_model(storage, "latest/", MODEL_V1)
    with pytest.raises(PromotionError, match="found no files.*latest/ was not changed"):
        copy_to_latest(storage, bucket="ml-models", source_prefix="1/nothing/", latest_prefix="latest/", record=RECORD)
    _put_model(storage, "1/nomlmodel/", {"model.pkl": b"x"})
    with pytest.raises(PromotionError, match="no MLmodel"):
        copy_to_latest(
            storage, bucket="ml-models", source_prefix="1/nomlmodel/", latest_prefix="latest/", record=RECORD
        )
    with pytest.raises(PromotionError, match="overlaps"):
        copy_to_latest(storage, bucket="ml-models", source_prefix="latest/x/", latest_prefix="latest/", record=RECORD)
    assert _latest(storage) == MODEL_V1


def test_failure_while_staging_leaves_latest_untouched(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    _put_model(storage, "latest/", MODEL_V1)
    _put_model(storage, "src/", MODEL_V2)
    calls = {"n": 0}

    def fail_second_staging_write(params, **kwargs):
        if params["Key"].startswith(promotion.STAGING_ROOT):
            calls["n"] += 1
            if calls["n"] == 2:
                raise StorageError("injected failure while staging")

    storage.client.meta.events.register("before-parameter-build.s3.PutObject", fail_second_staging_write)
    with pytest.raises(StorageError, match="injected"):
        copy_to_latest(storage, bucket="ml-models", source_prefix="src/", latest_prefix="latest/", record=RECORD)
    assert _latest(storage) == MODEL_V1
    assert storage.list_keys("ml-models", promotion.STAGING_ROOT) == []


def test_latest_is_never_empty_and_stale_files_go_last(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    _put_model(storage, "latest/", MODEL_V1)
    _put_model(storage, "src/", MODEL_V2)
    seen: list[tuple[str, set[str]]] = []

    def snapshot(event_name, **kwargs):
        keys = {
            o["Key"] for o in storage.client.list_objects_v2(Bucket="ml-models", Prefix="latest/").get("Contents", [])
        }
        seen.append((event_name.split(".")[-1], keys))

    for op in ("CopyObject", "PutObject", "DeleteObjects"):
        storage.client.meta.events.register(f"after-call.s3.{op}", snapshot)
    copy_to_latest(storage, bucket="ml-models", source_prefix="src/", latest_prefix="latest/", record=RECORD)
    assert seen and all(keys for _, keys in seen), "latest/ was empty at some moment"
    ops = [op for op, _ in seen]
    first_delete_into_latest = next(i for i, (op, keys) in enumerate(seen) if "latest/old-only.txt" not in keys)
    assert "CopyObject" not in ops[first_delete_into_latest:], "a stale file was deleted before the swap finished"
    copies = [keys for op, keys in seen if op == "CopyObject"]
    assert "latest/MLmodel" in copies[-1]


def test_inspect_latest_detects_empty_mixed_and_unmarked(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    assert "is empty" in " ".join(inspect_latest(storage, bucket="ml-models", latest_prefix="latest/").problems)
    _put_model(storage, "src/", MODEL_V2)
    copy_to_latest(storage, bucket="ml-models", source_prefix="src/", latest_prefix="latest/", record=RECORD)
    storage.put_bytes("ml-models", "latest/model.pkl", b"v1-weights")  # a reader mid-swap would see this
    state = inspect_latest(storage, bucket="ml-models", latest_prefix="latest/")
    assert not state.complete and "changed since promotion: model.pkl" in " ".join(state.problems)
    storage.delete_keys("ml-models", ["latest/" + MARKER_NAME])
    assert "no readable promotion marker" in " ".join(
        inspect_latest(storage, bucket="ml-models", latest_prefix="latest/").problems
    )


def test_more_than_1000_files(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    files = {"MLmodel": b"m", **{f"shards/{i:04d}.bin": str(i).encode() for i in range(1001)}}
    _put_model(storage, "big/", files)
    _put_model(storage, "latest/", {f"old/{i}": b"o" for i in range(3)})
    result = copy_to_latest(storage, bucket="ml-models", source_prefix="big/", latest_prefix="latest/", record=RECORD)
    assert len(result.files) == 1002
    assert set(storage.list_keys("ml-models", "latest/")) == {"latest/" + r for r in files} | {"latest/" + MARKER_NAME}


key_part = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))
rel_key = st.lists(key_part, min_size=1, max_size=4).map("/".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.sets(rel_key, min_size=1, max_size=8), stale=st.sets(rel_key, max_size=4))
def test_promotion_copies_exactly_the_source_key_set(metro_unit_platform, names, stale):
    storage = Storage(metro_unit_platform)
    source = "exp/run/artifacts/iris-model/"
    # keys may repeat the source prefix inside them; the published script's str.replace mangled those
    files = (
        {rel: rel.encode() for rel in names | {"MLmodel", f"sub/{source}MLmodel"}} if MARKER_NAME not in names else {}
    )
    if not files:
        return
    storage.delete_prefix("ml-models", "")
    _put_model(storage, source, files)
    _put_model(storage, "latest/", {f"stale/{s}": b"old" for s in stale})
    copy_to_latest(storage, bucket="ml-models", source_prefix=source, latest_prefix="latest/", record=RECORD)
    latest = _latest(storage)
    latest.pop(MARKER_NAME)
    assert latest == files


def test_failure_during_the_swap_is_journaled_refused_by_the_loader_and_recovered(metro_unit_platform, tmp_path):
    storage = Storage(metro_unit_platform)
    _put_model(storage, "src1/", MODEL_V1)
    copy_to_latest(storage, bucket="ml-models", source_prefix="src1/", latest_prefix="latest/", record=RECORD)
    _put_model(storage, "src2/", MODEL_V2)
    copies = {"n": 0}

    def fail_second_copy(params, **kwargs):
        copies["n"] += 1
        if copies["n"] == 2:
            raise StorageError("injected failure during the swap")

    handler = storage.client.meta.events.register("before-parameter-build.s3.CopyObject", fail_second_copy)
    with pytest.raises(PromotionError, match="during the swap.*--recover"):
        copy_to_latest(storage, bucket="ml-models", source_prefix="src2/", latest_prefix="latest/", record=RECORD)
    storage.client.meta.events.unregister("before-parameter-build.s3.CopyObject", handler)

    state = inspect_latest(storage, bucket="ml-models", latest_prefix="latest/")
    assert not state.complete and any("has not finished" in p for p in state.problems), state.problems
    with pytest.raises(PromotionError, match="not loading a mixed model.*--recover"):
        promotion.download_latest(storage, bucket="ml-models", latest_prefix="latest/", dest=tmp_path / "pod")
    assert promotion.recover(storage, bucket="ml-models", latest_prefix="other/") is None  # not its journal

    result = promotion.recover(storage, bucket="ml-models", latest_prefix="latest/")
    assert result is not None and result.files.keys() == MODEL_V2.keys()
    assert _latest(storage) == {**MODEL_V2, MARKER_NAME: _latest(storage)[MARKER_NAME]}
    assert inspect_latest(storage, bucket="ml-models", latest_prefix="latest/").complete
    assert storage.list_keys("ml-models", promotion.STAGING_ROOT) == []  # journal and staged copy gone
    assert promotion.recover(storage, bucket="ml-models", latest_prefix="latest/") is None


def test_a_journal_left_between_stage_and_swap_still_loads_the_old_model(metro_unit_platform, tmp_path, monkeypatch):
    storage = Storage(metro_unit_platform)
    _put_model(storage, "src1/", MODEL_V1)
    copy_to_latest(storage, bucket="ml-models", source_prefix="src1/", latest_prefix="latest/", record=RECORD)
    _put_model(storage, "src2/", MODEL_V2)

    _kill_at_swap(monkeypatch)  # a kill after the journal is written, before the first copy
    with pytest.raises(_Killed):
        copy_to_latest(storage, bucket="ml-models", source_prefix="src2/", latest_prefix="latest/", record=RECORD)
    monkeypatch.undo()
    files = promotion.download_latest(storage, bucket="ml-models", latest_prefix="latest/", dest=tmp_path / "pod")
    assert sorted(files) == sorted([*MODEL_V1, MARKER_NAME])
    assert (tmp_path / "pod" / "model.pkl").read_bytes() == MODEL_V1["model.pkl"]


def test_signals_during_the_swap_are_held_until_it_ends(monkeypatch):
    import signal

    delivered = []
    monkeypatch.setattr(signal, "raise_signal", delivered.append)
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: a live-tier session in this worker sets its own
    with promotion._signals_held("a test swap"):
        assert signal.getsignal(signal.SIGTERM) is not before
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # what the kernel would call
        assert delivered == []
    assert delivered == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before


class _Killed(BaseException):
    """Stands for a kill: nothing after it runs."""


def _kill_at_swap(monkeypatch):
    def die(*args, **kwargs):
        raise _Killed

    monkeypatch.setattr(promotion, "_swap", die)


def test_a_later_promotion_supersedes_a_killed_one_without_deleting_a_young_journal(
    metro_unit_platform, tmp_path, monkeypatch
):
    storage = Storage(metro_unit_platform)
    _put_model(storage, "src1/", MODEL_V1)
    _put_model(storage, "src2/", MODEL_V2)
    with monkeypatch.context() as m:
        _kill_at_swap(m)
        with pytest.raises(_Killed):
            copy_to_latest(storage, bucket="ml-models", source_prefix="src1/", latest_prefix="latest/", record=RECORD)
    killed = promotion.journals(storage, bucket="ml-models", latest_prefix="latest/")
    assert len(killed) == 1
    copy_to_latest(storage, bucket="ml-models", source_prefix="src2/", latest_prefix="latest/", record=RECORD)
    state = inspect_latest(storage, bucket="ml-models", latest_prefix="latest/")
    assert state.complete, state.problems  # the killed one is superseded, not "unfinished"
    assert promotion.recover(storage, bucket="ml-models", latest_prefix="latest/") is None  # would undo v2
    assert promotion.journals(storage, bucket="ml-models", latest_prefix="latest/") == killed  # young: kept
    files = promotion.download_latest(storage, bucket="ml-models", latest_prefix="latest/", dest=tmp_path / "pod")
    assert (tmp_path / "pod" / "model.pkl").read_bytes() == MODEL_V2["model.pkl"] and "conda.yaml" in files

    monkeypatch.setattr(promotion, "SUPERSEDED_AFTER_S", 0)  # once old enough, the next promotion drops it
    copy_to_latest(storage, bucket="ml-models", source_prefix="src2/", latest_prefix="latest/", record=RECORD)
    assert promotion.journals(storage, bucket="ml-models", latest_prefix="latest/") == []
    assert storage.list_keys("ml-models", promotion.STAGING_ROOT) == []


def test_an_unmarked_latest_still_loads_while_a_promotion_over_it_is_unfinished(
    metro_unit_platform, tmp_path, monkeypatch
):
    storage = Storage(metro_unit_platform)
    _put_model(storage, "latest/", MODEL_V1)  # as the published script leaves it: no marker
    _put_model(storage, "src2/", MODEL_V2)
    _kill_at_swap(monkeypatch)
    with pytest.raises(_Killed):
        copy_to_latest(storage, bucket="ml-models", source_prefix="src2/", latest_prefix="latest/", record=RECORD)
    monkeypatch.undo()
    promotion.download_latest(storage, bucket="ml-models", latest_prefix="latest/", dest=tmp_path / "pod")
    assert (tmp_path / "pod" / "model.pkl").read_bytes() == MODEL_V1["model.pkl"]


def test_a_held_signal_does_not_hide_the_error_that_ended_the_swap(monkeypatch, capfd):
    import signal

    delivered = []
    monkeypatch.setattr(signal, "raise_signal", delivered.append)
    with pytest.raises(PromotionError), promotion._signals_held("a test swap"):
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        raise PromotionError("injected: the swap failed half-way")
    err = capfd.readouterr().err
    assert "SIGTERM received during a test swap" in err and "injected: the swap failed half-way" in err
    assert delivered == [signal.SIGTERM]


def test_an_interrupt_held_during_a_swap_outranks_a_budget_alarm():
    """SIGALRM (a check's time budget) and then SIGINT arrive during one swap: Ctrl-C wins, so the run stops."""
    import signal

    from metro_e2e import promotion

    alarms = []
    previous = signal.signal(signal.SIGALRM, lambda *a: alarms.append("alarm"))
    try:
        with pytest.raises(KeyboardInterrupt):
            with promotion._signals_held("a test swap"):
                signal.raise_signal(signal.SIGALRM)
                signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert alarms == []
