"""A promotion killed part-way leaves ``latest/`` holding one complete model, which a test loads and predicts with.

The promotion runs in its own process against moto's S3 server on loopback and pauses at a chosen point
(before the swap, or after the second copy of the swap); the test then sends the signal and loads what
``latest/`` holds the way the serving pod does (download every object, ``mlflow.pyfunc.load_model``).
The old model predicts class 0 for every row and the new one class 2, so a mixed or wrong model shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from metro_e2e import promotion
from metro_e2e.config import load_config
from metro_e2e.errors import PromotionError
from metro_e2e.storage import Storage

from .conftest import clean_env

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from metro_e2e import promotion
    from metro_e2e.config import load_config
    from metro_e2e.storage import Storage

    storage = Storage(load_config(cli={"url": os.environ["S3_URL"]}, environ={}))
    pause_at, pause_s = os.environ["PAUSE_AT"], float(os.environ["PAUSE_S"])
    real_swap, real_copy, copies = promotion._swap, Storage.copy, []

    def pause(where):
        print("PAUSED " + where, flush=True)
        time.sleep(pause_s)

    def swap(*args, **kwargs):
        pause("before the swap")
        return real_swap(*args, **kwargs)

    def copy(self, *args, **kwargs):
        result = real_copy(self, *args, **kwargs)
        copies.append(args)
        if len(copies) == 2:
            pause("after the second copy of the swap")
        return result

    if pause_at == "swap":
        promotion._swap = swap
    else:
        Storage.copy = copy
    source, latest = sys.argv[1], sys.argv[2]
    record = {"name": "new", "version": "2", "source_uri": "s3://ml-models/" + source}
    promotion.copy_to_latest(storage, bucket="ml-models", source_prefix=source, latest_prefix=latest, record=record)
    print("DONE", flush=True)
    """
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two real MLflow sklearn models with the same file names: 'old' predicts 0, 'new' predicts 2."""
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    from metro_e2e import data

    frame = data.iris_frame()
    X, y = frame.drop(columns=["target"]), frame["target"]
    folders = {}
    for name, constant in (("old", 0), ("new", 2)):
        folder = tmp_path_factory.mktemp("models") / name
        mlflow.sklearn.save_model(DummyClassifier(strategy="constant", constant=constant).fit(X, y), str(folder))
        folders[name] = folder
    return folders, X


@pytest.fixture
def platform(metro_s3_server, models, tmp_path):
    """``old`` promoted to a fresh latest/; ``new`` uploaded next to it, ready to be promoted."""
    folders, X = models
    storage = Storage(load_config(cli={"url": metro_s3_server}, environ={}))
    ns = f"metro-e2e/{uuid.uuid4().hex[:10]}/"
    for name, folder in folders.items():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            storage.put_bytes("ml-models", f"{ns}{name}/{path.relative_to(folder)}", path.read_bytes())
    record = {"name": "old", "version": "1", "source_uri": f"s3://ml-models/{ns}old/"}
    promotion.copy_to_latest(
        storage, bucket="ml-models", source_prefix=f"{ns}old/", latest_prefix=f"{ns}latest/", record=record
    )
    assert len(list(folders["new"].iterdir())) >= 3  # the swap has more than two copies to interrupt
    yield {"storage": storage, "ns": ns, "latest": f"{ns}latest/", "url": metro_s3_server, "X": X}
    storage.delete_prefix("ml-models", ns)


def _interrupt(platform, tmp_path, *, pause_at: str, sig: int, pause_s: float = 60.0):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, S3_URL=platform["url"], PAUSE_AT=pause_at, PAUSE_S=str(pause_s))
    proc = subprocess.Popen(
        [sys.executable, str(driver), platform["ns"] + "new/", platform["latest"]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("PAUSED"), (line, proc.stderr.read() if proc.poll() is not None else "")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, line + out, err


def _served_predictions(platform, tmp_path) -> set[int]:
    """What the serving pod would serve: download latest/, load it, predict every Iris row."""
    import mlflow.pyfunc

    folder = tmp_path / f"pod-{uuid.uuid4().hex[:6]}"
    promotion.download_latest(platform["storage"], bucket="ml-models", latest_prefix=platform["latest"], dest=folder)
    return set(int(p) for p in mlflow.pyfunc.load_model(str(folder)).predict(platform["X"]))


def _recover_step(platform) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "metro_e2e.steps.promote",
            "--recover",
            "--url",
            platform["url"],
            "--latest_prefix",
            platform["latest"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )


def test_killed_between_stage_and_swap_leaves_the_old_model_then_recover_finishes(platform, tmp_path):
    code, out, _ = _interrupt(platform, tmp_path, pause_at="swap", sig=signal.SIGKILL)
    assert code == -signal.SIGKILL and "DONE" not in out
    assert _served_predictions(platform, tmp_path) == {0}  # old, complete
    state = promotion.inspect_latest(platform["storage"], bucket="ml-models", latest_prefix=platform["latest"])
    assert any("has not finished" in p and "--recover" in p for p in state.problems), state.problems

    done = _recover_step(platform)
    assert done.returncode == 0, done.stderr
    assert "finished the interrupted promotion of new version 2" in done.stdout
    assert _served_predictions(platform, tmp_path) == {2}  # new, complete
    assert promotion.inspect_latest(platform["storage"], bucket="ml-models", latest_prefix=platform["latest"]).complete


def test_sigterm_during_the_swap_is_held_until_the_new_model_is_complete(platform, tmp_path):
    code, out, err = _interrupt(platform, tmp_path, pause_at="copy", sig=signal.SIGTERM, pause_s=5.0)
    assert code == -signal.SIGTERM, err  # the signal still takes effect ...
    assert "DONE" not in out
    assert "SIGTERM received during the swap" in err and "finishing it first" in err
    assert _served_predictions(platform, tmp_path) == {2}  # ... after the swap: new, complete
    state = promotion.inspect_latest(platform["storage"], bucket="ml-models", latest_prefix=platform["latest"])
    assert state.complete, state.problems
    assert promotion.journals(platform["storage"], bucket="ml-models", latest_prefix=platform["latest"]) == []


def test_sigkill_during_the_swap_is_refused_by_the_loader_then_recovered(platform, tmp_path):
    code, out, _ = _interrupt(platform, tmp_path, pause_at="copy", sig=signal.SIGKILL)
    assert code == -signal.SIGKILL and "DONE" not in out
    state = promotion.inspect_latest(platform["storage"], bucket="ml-models", latest_prefix=platform["latest"])
    assert not state.files_match_marker  # old and new files mixed: SIGKILL cannot be held
    with pytest.raises(PromotionError, match="not loading a mixed model"):
        _served_predictions(platform, tmp_path)

    done = _recover_step(platform)
    assert done.returncode == 0, done.stderr
    assert _served_predictions(platform, tmp_path) == {2}
    assert promotion.inspect_latest(platform["storage"], bucket="ml-models", latest_prefix=platform["latest"]).complete
    assert _recover_step(platform).stdout.strip().endswith("nothing to do")
