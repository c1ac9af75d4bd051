"""The Iris dataset: build it, move it through S3 as CSV, split it, write the four split files."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metro_e2e.errors import InputError
from metro_e2e.storage import Storage

log = logging.getLogger(__name__)

TARGET = "target"
FEATURES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")
DEFAULT_TEST_SIZE = 0.2
DEFAULT_SEED = 42
SPLIT_NAMES = ("train_X", "test_X", "train_y", "test_y")


@dataclass(frozen=True)
class Split:
    """The four parts of a train/test split."""

    train_X: pd.DataFrame
    test_X: pd.DataFrame
    train_y: pd.DataFrame
    test_y: pd.DataFrame


def iris_frame() -> pd.DataFrame:
    """The 150 Iris rows: scikit-learn's four feature columns plus an integer ``target``.

    Read from the CSV scikit-learn ships (``sklearn/datasets/data/iris.csv``, what ``load_iris`` reads) without
    importing ``sklearn.datasets``, which with SciPy costs about 2 s: the smoke check (``--quick``) needs Iris rows
    and nothing else of scikit-learn. tests/unit/test_data.py keeps the frame equal to ``load_iris``'s; a
    scikit-learn without that file gets ``load_iris`` itself.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    shipped = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "iris.csv" if spec else None
    if shipped is None or not shipped.is_file():
        from sklearn.datasets import load_iris

        iris = load_iris(as_frame=True)
        return pd.concat([iris.data, pd.DataFrame(iris.target, columns=[TARGET])], axis=1)
    frame = pd.read_csv(shipped, skiprows=1, header=None, names=[*FEATURES, TARGET])
    return frame.astype({name: "float64" for name in FEATURES} | {TARGET: "int64"})


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def from_csv_bytes(data: bytes, *, what: str, require_target: bool = True) -> pd.DataFrame:
    """Parse CSV bytes; an empty file, a file without rows or without ``target`` is an ``InputError``."""
    if not data.strip():
        raise InputError(f"{what} is empty", hint="expected a CSV file with a header row and data rows")
    try:
        # pandas' default float parser can be one ulp off; round_trip parses what to_csv wrote exactly
        frame = pd.read_csv(io.BytesIO(data), float_precision="round_trip")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} is not valid CSV: {exc}".splitlines()[0]) from exc
    if frame.empty:
        raise InputError(f"{what} has a header but no data rows")
    if require_target and TARGET not in frame.columns:
        raise InputError(
            f"{what} has no {TARGET!r} column (columns: {', '.join(map(str, frame.columns))})",
            hint=f"the label column must be named {TARGET!r}",
        )
    return frame


def read_csv_file(path: str | os.PathLike, *, require_target: bool = False) -> pd.DataFrame:
    """Read a local CSV file, with ``InputError`` for a missing, empty or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file {str(p)!r} does not exist", hint="check the path passed to the step")
    return from_csv_bytes(p.read_bytes(), what=f"input file {str(p)!r}", require_target=require_target)


def upload_dataset(storage: Storage, frame: pd.DataFrame, *, bucket: str, key: str) -> int:
    """Write ``frame`` as CSV to ``s3://bucket/key``; return the number of bytes written."""
    body = to_csv_bytes(frame)
    storage.put_bytes(bucket, key, body)
    log.info("uploaded %d rows (%d bytes) to s3://%s/%s", len(frame), len(body), bucket, key)
    return len(body)


def read_dataset(storage: Storage, *, bucket: str, key: str) -> pd.DataFrame:
    """Read the CSV at ``s3://bucket/key`` into a frame that has a ``target`` column."""
    return from_csv_bytes(storage.get_bytes(bucket, key), what=f"s3://{bucket}/{key}")


def split(frame: pd.DataFrame, *, test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED) -> Split:
    """Stratified, seeded train/test split of a frame with a ``target`` column."""
    if TARGET not in frame.columns:
        raise InputError(f"the dataset has no {TARGET!r} column")
    if not 0 < test_size < 1:
        raise InputError(f"test size {test_size} must be between 0 and 1")
    X = frame.drop(columns=[TARGET])
    y = frame[[TARGET]]
    from sklearn.model_selection import train_test_split

    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, random_state=seed, stratify=y[TARGET]
        )
    except ValueError as exc:
        raise InputError(f"cannot split the dataset ({len(frame)} rows): {exc}") from exc
    return Split(X_train, X_test, y_train, y_test)


@contextlib.contextmanager
def _all_or_nothing(paths: list[Path]) -> Iterator[list[Path]]:
    """Yield temp paths beside ``paths``; rename them all on success, remove them all on failure."""
    temps: list[Path] = []
    try:
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        for tmp, p in zip(temps, paths, strict=True):
            os.replace(tmp, p)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def write_split(parts: Split, paths: Mapping[str, str | os.PathLike]) -> None:
    """Write the four CSVs to ``paths`` (keys ``train_X`` ...): all four appear, or none."""
    missing = [n for n in SPLIT_NAMES if n not in paths]
    if missing:
        raise InputError(f"no output path for {', '.join(missing)}")
    targets = [Path(paths[n]) for n in SPLIT_NAMES]
    try:
        with _all_or_nothing(targets) as temps:
            for name, tmp in zip(SPLIT_NAMES, temps, strict=True):
                getattr(parts, name).to_csv(tmp, index=False)
    except OSError as exc:
        raise InputError(f"cannot write the split files: {exc}") from exc


def read_split(paths: Mapping[str, str | os.PathLike]) -> Split:
    """Read the four CSVs written by ``write_split``."""
    frames = {n: read_csv_file(paths[n]) for n in SPLIT_NAMES}
    for n in ("train_y", "test_y"):
        if frames[n].shape[1] != 1:
            raise InputError(f"{n} file {str(paths[n])!r} must have exactly one column, has {frames[n].shape[1]}")
    if len(frames["train_X"]) != len(frames["train_y"]) or len(frames["test_X"]) != len(frames["test_y"]):
        raise InputError("X and y files have different row counts")
    return Split(**frames)
