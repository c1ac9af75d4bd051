"""The metro-e2e command, in-process."""

from __future__ import annotations

import pytest

from metro_e2e import __version__, cli


def test_demo_prints_every_stage(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "accuracy 0." in out
    assert "version 1" in out
    assert "latest/MLmodel" in out and "latest/model.pkl" in out
    assert "predictions for 2 rows: [0, 2] (labels [0, 2])" in out
    assert "S3: moto" in out


def test_config_shows_sources_and_masks_secrets(capsys, monkeypatch):
    monkeypatch.setenv("METRO_S3_SECRET_KEY", "hush-hush-123")
    assert cli.main(["config", "--url", "http://gw.test"]) == 0
    out = capsys.readouterr().out
    assert "tracking_uri     http://gw.test/mlflow  [derived from url (command-line option --url)]" in out
    assert "url              http://gw.test  [command-line option --url]" in out
    assert "hush-hush-123" not in out and "s3_secret_key    ***  [environment variable METRO_S3_SECRET_KEY]" in out


def test_bad_setting_is_one_line_with_exit_code_2(capsys):
    assert cli.main(["config", "--url", "ftp://x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("metro-e2e: error: setting url = 'ftp://x'")


def test_version_and_usage(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2


def test_stack_up_passes_its_options_to_the_stack(monkeypatch, tmp_path, capsys):
    import metro_e2e.stack as stack_pkg

    seen = {}

    class FakeStack:
        def __init__(self, options):
            seen["options"] = options
            self.profile = type("P", (), {"version": "2.20.3"})()
            self.s3_choice = type("C", (), {"backend": "moto", "reason": "test"})()
            self.run_dir = tmp_path

        def start(self):
            return self

        def status(self):
            return {"gateway_url": "http://127.0.0.1:1", "s3_backend": "moto", "services": {}, "kfp": "none"}

    monkeypatch.setattr(stack_pkg, "LocalStack", FakeStack)
    state = tmp_path / "current.json"
    argv = ["stack", "up", "--seed", "--mlflow-server", "3.x", "--s3", "moto", "--state", str(state)]
    assert cli.main(argv) == 0
    options = seen["options"]
    assert (options.seed_model, options.mlflow_server, options.s3) == (True, "3.x", "moto")
    assert state.read_text().endswith("stack.json")


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        (["--restart-serving", "", "--allow-promote"], "--restart-serving is empty"),  # would skip SRV-5 quietly
        (["--latency-budget-ms", "0"], "--latency-budget-ms 0 is not a positive number"),  # would fail SRV-6 always
        (["--restart-timeout", "-5"], "--restart-timeout -5 is not a positive number"),
        (["--latency-budget-ms", "inf"], "--latency-budget-ms inf is not a positive number"),  # SRV-6 proving nothing
    ],
)
def test_an_empty_or_non_positive_option_is_bad_input_with_the_reports(argv, sentence, tmp_path, capsys):
    import json

    report = tmp_path / "r.json"
    assert cli.main(["check", "--url", "http://127.0.0.1:9", "--report-json", str(report), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"metro-e2e: error: {sentence}"), err
    clauses = json.loads(report.read_text())["clauses"]
    assert {c["verdict"] for c in clauses} == {"error"} and clauses[0]["detail"].startswith(f"not run: {sentence}")
