"""Step CLIs in-process: the happy path end to end, and bad input as one line with a distinct exit code."""

from __future__ import annotations

import json

import pytest
from moto.core import set_initial_no_auth_action_count

from metro_e2e import data
from metro_e2e.config import IN_CLUSTER_URL, SETTINGS
from metro_e2e.errors import AuthError, ConfigError, EndpointUnreachable, InputError, StorageError
from metro_e2e.steps import load_data, promote, train, upload_data
from metro_e2e.steps._cli import config_from_args
from metro_e2e.storage import Storage


def _platform_args(config, *names):
    values = {
        "url": config.url,
        "tracking_uri": config.tracking_uri,
        "artifact_root": config.artifact_root,
        "experiment": config.experiment,
        "model_name": config.model_name,
    }
    return [item for n in names for item in (f"--{n}", values[n])]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def _split_args(tmp_path, prefix):
    return [a for n in data.SPLIT_NAMES for a in (f"--{prefix}{n}", str(tmp_path / f"{n}.csv"))]


def test_upload_load_train_promote(metro_unit_platform, tmp_path, capsys):
    config = metro_unit_platform
    assert upload_data.main(_platform_args(config, "url")) == 0
    assert "uploaded 150 rows" in capsys.readouterr().out
    assert load_data.main(_split_args(tmp_path, "output_dataset_") + _platform_args(config, "url")) == 0
    assert "120 train and 30 test rows" in capsys.readouterr().out
    result_file = tmp_path / "out" / "result.json"
    argv = _split_args(tmp_path, "dataset_") + ["--lineage_tag", "run-42", "--output_result", str(result_file)]
    argv += _platform_args(config, "url", "tracking_uri", "artifact_root", "experiment", "model_name")
    assert train.main(argv) == 0
    assert f"registered {config.model_name} version 1" in capsys.readouterr().out
    assert json.loads(result_file.read_text())["lineage"] == "run-42"
    assert promote.main(_platform_args(config, "url", "tracking_uri", "model_name")) == 0
    assert "promoted" in capsys.readouterr().out
    assert "latest/MLmodel" in Storage(config).list_keys("ml-models", "latest/")


def test_env_fallbacks_are_used(metro_unit_platform, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("METRO_URL", metro_unit_platform.url)
    monkeypatch.setenv("METRO_DATA_KEY", "ns/run-1/iris.csv")
    assert upload_data.main([]) == 0
    assert "s3://ml-data/ns/run-1/iris.csv" in capsys.readouterr().out


@pytest.mark.parametrize(("content", "words"), [(b"", "is empty"), (b"a,b\n1,2\n", "no 'target' column")])
def test_upload_bad_csv(metro_unit_platform, tmp_path, capsys, content, words):
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    code = upload_data.main(["--input_csv", str(path)] + _platform_args(metro_unit_platform, "url"))
    assert code == InputError.exit_code
    assert words in _one_error_line(capsys)
    assert Storage(metro_unit_platform).list_keys("ml-data", "") == []


def test_train_missing_input_file(metro_unit_platform, tmp_path, capsys):
    code = train.main(_split_args(tmp_path, "dataset_") + _platform_args(metro_unit_platform, "url", "tracking_uri"))
    assert code == InputError.exit_code
    line = _one_error_line(capsys)
    assert line.startswith("train: error: input file") and "does not exist" in line


def test_load_data_missing_bucket_leaves_no_files(metro_unit_platform, tmp_path, capsys):
    argv = _split_args(tmp_path, "output_dataset_") + _platform_args(metro_unit_platform, "url")
    assert load_data.main(argv + ["--data_bucket", "datasets"]) == StorageError.exit_code
    assert "bucket 'datasets' does not exist" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_load_data_wrong_credentials(metro_unit_platform, tmp_path, capsys, monkeypatch):
    upload_data.main(_platform_args(metro_unit_platform, "url"))
    capsys.readouterr()
    monkeypatch.setenv("METRO_S3_ACCESS_KEY", "not-the-key")
    monkeypatch.setenv("METRO_S3_SECRET_KEY", "not-the-secret-xyz")

    @set_initial_no_auth_action_count(0)  # moto now checks keys the way MinIO does
    def run() -> int:
        return load_data.main(_split_args(tmp_path, "output_dataset_") + _platform_args(metro_unit_platform, "url"))

    assert run() == AuthError.exit_code
    line = _one_error_line(capsys)
    assert "refused the credentials (InvalidAccessKeyId)" in line
    assert "not-the-secret-xyz" not in line
    assert list(tmp_path.iterdir()) == []


def test_malformed_setting_is_a_config_error(capsys, monkeypatch):
    monkeypatch.setenv("METRO_URL", "gateway.local")
    assert upload_data.main([]) == ConfigError.exit_code
    line = _one_error_line(capsys)
    assert "setting url = 'gateway.local' (from environment variable METRO_URL) is invalid" in line


def test_unreachable_endpoint(capsys, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    def refuse(**kwargs):
        raise EndpointConnectionError(endpoint_url="http://gw.test")

    import boto3
    import botocore.handlers

    # boto3's default session copies the built-in handlers when it is created: give this test its own, or a session
    # first made here would refuse every later PutObject in this worker (seen in tox -e mlflow3's pairs tests)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setattr(
        botocore.handlers,
        "BUILTIN_HANDLERS",
        [*botocore.handlers.BUILTIN_HANDLERS, ("before-send.s3.PutObject", refuse)],
    )
    assert upload_data.main(["--url", "http://gw.test"]) == EndpointUnreachable.exit_code
    assert "did not answer" in _one_error_line(capsys)


def test_unexpected_error_is_one_line(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("surprise\nsecond line")

    monkeypatch.setattr(upload_data, "run", boom)
    assert upload_data.main(["--url", "http://gw.test"]) == 1
    line = _one_error_line(capsys)
    assert "internal error: RuntimeError: surprise" in line and "METRO_DEBUG" in line


def test_guide_argument_names_are_the_interface():
    """Breakage 7: the guide's component signature says output_dataset_train; the script takes _X."""
    parser = load_data.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(
            [
                "--output_dataset_train",
                "a",
                "--output_dataset_test_X",
                "b",
                "--output_dataset_train_y",
                "c",
                "--output_dataset_test_y",
                "d",
            ]
        )
    ok = parser.parse_args([a for n in data.SPLIT_NAMES for a in (f"--output_dataset_{n}", n)])
    assert ok.output_dataset_train_X == "train_X"
    assert {a.dest for a in train.build_parser()._actions} >= {f"dataset_{n}" for n in data.SPLIT_NAMES}


def test_credentials_are_not_arguments():
    for module in (upload_data, load_data, train, promote):
        options = {o for a in module.build_parser()._actions for o in a.option_strings}
        assert not any("key" in o and "data_key" not in o for o in options), options


def test_setting_options_take_their_help_from_the_declaration():
    declared = {s.name: s for s in SETTINGS}
    offered = set()
    for module in (upload_data, load_data, train, promote):
        for action in module.build_parser()._actions:
            if action.dest in declared:
                s = declared[action.dest]
                offered.add(s.name)
                assert action.option_strings == [f"--{s.name}"] and action.default is None
                assert action.help.startswith(f"{s.help} (env {s.env}; default: "), action.help
    assert offered == {s.name for s in SETTINGS if s.step}
    url = next(a for a in upload_data.build_parser()._actions if a.dest == "url")
    assert url.help.endswith(f"default: {IN_CLUSTER_URL})")  # the steps' gateway, not the laptop's


def test_an_empty_environment_variable_is_unset_in_a_step():
    args = upload_data.build_parser().parse_args([])
    config = config_from_args(args, environ={"METRO_URL": "", "METRO_DATA_KEY": "", "METRO_S3_SECRET_KEY": ""})
    assert (config.url, config.data_key, config.s3_secret_key.reveal()) == (IN_CLUSTER_URL, "iris/iris.csv", "minio123")


def test_a_port_one_stack_chose_is_not_chosen_by_another_before_it_binds(monkeypatch):
    """Two stacks (two xdist workers, two checks) that pick the same free port before either binds it collide
    ("Address already in use"); a chosen port is held with a lock until the stack releases it."""
    import random

    from metro_e2e.stack import process

    picks = iter([24000, 24000, 24001])
    monkeypatch.setattr(random, "randint", lambda low, high: next(picks))
    first = process.free_port()
    second = process.free_port()  # 24000 again: reserved, so it takes the next pick
    try:
        assert (first, second) == (24000, 24001)
    finally:
        process.release_ports([first, second])
    monkeypatch.setattr(random, "randint", lambda low, high: 24000)
    again = process.free_port()
    process.release_ports([again])
    assert again == 24000  # released ports can be chosen again


def test_a_port_another_process_reserved_is_not_chosen(monkeypatch):
    """The collision the lock prevents is between processes: a port another process's stack holds is skipped."""
    import random
    import subprocess
    import sys

    from metro_e2e.stack import process

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from metro_e2e.stack import process; process._reserve(24010); print('held', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        import select

        assert select.select([holder.stdout], [], [], 30)[0], "the holder did not reserve the port within 30 s"
        assert holder.stdout.readline().strip() == "held"
        picks = iter([24010, 24011])
        monkeypatch.setattr(random, "randint", lambda low, high: next(picks))
        port = process.free_port()
        process.release_ports([port])
        assert port == 24011
    finally:
        holder.communicate("\n", timeout=30)
