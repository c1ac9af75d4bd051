"""Data: the Iris frame, CSV round trips, the stratified split and the all-or-nothing writes."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metro_e2e import data
from metro_e2e.errors import InputError, StorageError
from metro_e2e.storage import Storage


def test_iris_frame_has_sklearn_columns_and_target():
    frame = data.iris_frame()
    assert list(frame.columns) == [*data.FEATURES, "target"]
    assert len(frame) == 150
    assert sorted(frame["target"].unique()) == [0, 1, 2]


def test_upload_then_read_back(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    frame = data.iris_frame()
    data.upload_dataset(storage, frame, bucket="ml-data", key="ns/iris.csv")
    back = data.read_dataset(storage, bucket="ml-data", key="ns/iris.csv")
    pd.testing.assert_frame_equal(back, frame)


def test_reading_a_missing_bucket_names_it(metro_unit_platform):
    with pytest.raises(StorageError, match="bucket 'datasets' does not exist"):
        data.read_dataset(Storage(metro_unit_platform), bucket="datasets", key="iris/iris.csv")


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(finite, finite, st.integers(-(2**53), 2**53)), min_size=1, max_size=40),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8),
)
def test_csv_round_trip_preserves_values(rows, colname):
    frame = pd.DataFrame(rows, columns=["a", f"x{colname}", "target"])
    back = data.from_csv_bytes(data.to_csv_bytes(frame), what="t")
    assert list(back.columns) == list(frame.columns)
    for col in frame.columns:
        assert back[col].tolist() == frame[col].tolist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.lists(st.integers(min_value=2, max_value=30), min_size=2, max_size=4),
    test_size=st.floats(min_value=0.15, max_value=0.5),
    seed=st.integers(0, 2**31 - 1),
)
def test_split_partitions_rows_and_keeps_class_proportions(counts, test_size, seed):
    labels = [cls for cls, n in enumerate(counts) for _ in range(n)]
    frame = pd.DataFrame({"f": range(len(labels)), "target": labels})
    n_test = math.ceil(test_size * len(frame))
    if n_test < len(counts) or len(frame) - n_test < len(counts):
        return  # sklearn cannot stratify so few rows; covered by the error test below
    parts = data.split(frame, test_size=test_size, seed=seed)
    train_ids, test_ids = set(parts.train_X["f"]), set(parts.test_X["f"])
    assert not train_ids & test_ids
    assert train_ids | test_ids == set(frame["f"])
    assert len(parts.train_X) == len(parts.train_y) and len(parts.test_X) == len(parts.test_y)
    share = len(parts.test_X) / len(frame)
    for cls, n in enumerate(counts):
        in_test = int((parts.test_y["target"] == cls).sum())
        assert abs(in_test - n * share) <= 1, (cls, n, in_test, share)


def test_split_is_seeded():
    frame = data.iris_frame()
    a, b = data.split(frame, seed=7), data.split(frame, seed=7)
    pd.testing.assert_frame_equal(a.test_X, b.test_X)
    assert not data.split(frame, seed=8).test_X.index.equals(a.test_X.index)


def test_split_errors_are_input_errors():
    with pytest.raises(InputError, match="no 'target' column"):
        data.split(pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(InputError, match="between 0 and 1"):
        data.split(data.iris_frame(), test_size=1.5)
    with pytest.raises(InputError, match="cannot split"):
        data.split(pd.DataFrame({"a": [1, 2, 3], "target": [0, 1, 2]}))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"a,b\n", "no data rows"),
        (b"a,b\n1,2\n", "no 'target' column"),
        (b'a,"b\n1,2,3\n', "not valid CSV"),
    ],
)
def test_bad_csv_is_an_input_error(tmp_path, content, words):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=words):
        data.read_csv_file(path, require_target=True)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        data.read_csv_file(tmp_path / "nope.csv")


def test_write_split_writes_all_four_and_reads_back(tmp_path):
    parts = data.split(data.iris_frame())
    paths = {n: tmp_path / "deep" / f"{n}.csv" for n in data.SPLIT_NAMES}
    data.write_split(parts, paths)
    back = data.read_split(paths)
    pd.testing.assert_frame_equal(back.test_X, parts.test_X.reset_index(drop=True))
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == sorted(f"{n}.csv" for n in data.SPLIT_NAMES)


def test_write_split_leaves_nothing_when_one_path_fails(tmp_path):
    parts = data.split(data.iris_frame())
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where a folder is needed")
    paths = {n: tmp_path / f"{n}.csv" for n in data.SPLIT_NAMES}
    paths["test_y"] = blocker / "test_y.csv"
    with pytest.raises(InputError, match="cannot write"):
        data.write_split(parts, paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked"]


def test_write_split_needs_every_path(tmp_path):
    with pytest.raises(InputError, match="no output path for test_y"):
        data.write_split(data.split(data.iris_frame()), {n: tmp_path / n for n in data.SPLIT_NAMES[:3]})


def test_read_split_checks_shapes(tmp_path):
    parts = data.split(data.iris_frame())
    paths = {n: tmp_path / f"{n}.csv" for n in data.SPLIT_NAMES}
    data.write_split(parts, paths)
    parts.train_X.to_csv(paths["train_y"], index=False)
    with pytest.raises(InputError, match="exactly one column"):
        data.read_split(paths)
    data.write_split(parts, paths)
    parts.train_X.head(3).to_csv(paths["train_X"], index=False)
    with pytest.raises(InputError, match="different row counts"):
        data.read_split(paths)


def test_fixture_csv_matches_generated_iris(metro_fixtures: Path):
    pd.testing.assert_frame_equal(pd.read_csv(metro_fixtures / "iris.csv"), data.iris_frame())


def test_iris_frame_equals_load_iris():
    """``iris_frame`` reads the CSV scikit-learn ships instead of importing ``sklearn.datasets``: same frame."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    expected = pd.concat([iris.data, pd.DataFrame(iris.target, columns=[data.TARGET])], axis=1)
    pd.testing.assert_frame_equal(data.iris_frame(), expected, check_exact=True)


def test_the_smoke_checks_modules_import_neither_scikit_learn_nor_mlflow():
    """What ``check --quick`` runs (the checks, the Iris rows, the serving client) loads no scikit-learn estimator
    code and no MLflow: each costs seconds of start-up that the smoke check does not need."""
    import subprocess
    import sys

    code = (
        "import sys, metro_e2e.conformance.checks, metro_e2e.conformance.session, metro_e2e.data as d; d.iris_frame(); "
        "print(sorted(m for m in ('mlflow', 'sklearn.datasets', 'sklearn.tree', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout
