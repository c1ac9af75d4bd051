"""The pytest plugin, loaded through its pytest11 entry point.

Layer markers from the folder, the metro option group and the metro_config fixture.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# A function whose instructions have no line number (what Python 3.11 gives some instructions): its frame in a
# traceback has tb_lineno None, as where a cancelled CI job's SIGINT landed in the failing CI run.
NO_LINES = (
    "import types\n"
    "def no_lines(fn):\n"
    "    code = fn.__code__\n"
    "    units, table = len(code.co_code) // 2, b''\n"
    "    while units:\n"
    "        n = min(8, units)\n"
    "        table += bytes([0xF8 + n - 1])  # a location entry 'no location' for n code units\n"
    "        units -= n\n"
    "    return types.FunctionType(code.replace(co_linetable=table), fn.__globals__)\n"
)


def test_layer_marker_comes_from_the_folder_and_url_option_reaches_the_fixture(pytester):
    pytester.makeini("[pytest]\nmetro_url = http://from-ini.test\n")
    pytester.mkdir("tests")
    pytester.mkdir("tests/integration")
    pytester.path.joinpath("tests/integration/test_x.py").write_text(
        "def test_x(request, metro_config):\n"
        "    assert request.node.get_closest_marker('integration')\n"
        "    assert request.node.get_closest_marker('unit') is None\n"
        "    assert metro_config.tracking_uri == 'http://from-cli.test/mlflow'\n"
    )
    result = pytester.runpytest("--metro-url", "http://from-cli.test", "-m", "integration")
    result.assert_outcomes(passed=1)


def test_ini_url_is_used_without_option(pytester, monkeypatch):
    monkeypatch.delenv("METRO_URL", raising=False)
    pytester.makeini("[pytest]\nmetro_url = http://from-ini.test\n")
    pytester.makepyfile("def test_y(metro_config):\n    assert metro_config.s3_endpoint == 'http://from-ini.test'\n")
    pytester.runpytest().assert_outcomes(passed=1)


def _suite_report(pytester, tmp_path, conftest: str) -> tuple[object, dict]:
    """Run the clause suite against a closed port with ``conftest``; the pytest result and the JSON report."""
    import json

    from metro_e2e.conformance.runner import SUITE

    pytester.makeconftest(conftest)
    report = tmp_path / "report.json"
    args = ["-p", "no:cacheprovider", "--metro-url", "http://127.0.0.1:9", "--metro-report-json", str(report)]
    result = pytester.runpytest_subprocess(*args, "--pyargs", SUITE)
    return result, json.loads(report.read_text())


INTERRUPTS_PYTEST_CANNOT_SHOW = {
    # the interrupt's own traceback has the frame
    "direct": "def _raise():\n    raise KeyboardInterrupt\ndef test_z():\n    no_lines(_raise)()\n",
    # it lands while such an exception is handled: pytest formats the chained one from a fresh traceback
    "chained": "def _raise():\n"
    "    raise ValueError('first')\n"
    "def test_z():\n"
    "    try:\n"
    "        no_lines(_raise)()\n"
    "    except ValueError:\n"
    "        raise KeyboardInterrupt\n",
}


@pytest.mark.parametrize("case", list(INTERRUPTS_PYTEST_CANNOT_SHOW))
def test_an_interrupt_pytest_cannot_show_still_ends_as_interrupted(pytester, case):
    """Python 3.11 can leave a frame of an interrupted traceback with no line number (a cancelled CI job's SIGINT
    landing on such an instruction); pytest's terminal reporter then crashed formatting it (TypeError in
    ``TracebackEntry.lineno``) and ``check`` reported an internal error (exit 1) for a cancelled run. The frame here
    is made with no line numbers, which gives the same traceback."""
    pytester.makepyfile(NO_LINES + INTERRUPTS_PYTEST_CANNOT_SHOW[case])
    result = pytester.runpytest_subprocess()  # in process, pytester re-raises the interrupt into this session
    assert result.ret == 2, result.stderr.str()  # pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])


MARKS_OUTSIDE_THE_GATE = {
    # a skip mark (or a fixture's skip) is the clause's verdict with its reason, not an unreached clause
    "skip": ("pytest.mark.skip(reason='SRV-6 is switched off here')", ("skipped", "SRV-6 is switched off here")),
    # an xfail mark that keeps the check from running is no verdict: error, never skipped
    "xfail": ("pytest.mark.xfail(run=False)", ("error", "not run: an xfail mark stopped its setup")),
}


@pytest.mark.parametrize("mark", list(MARKS_OUTSIDE_THE_GATE))
def test_a_clause_a_mark_kept_from_running_gets_its_verdict_from_the_mark(pytester, tmp_path, mark):
    marker, expected = MARKS_OUTSIDE_THE_GATE[mark]
    _, document = _suite_report(
        pytester,
        tmp_path,
        "import pytest\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        if item.get_closest_marker('clause').args[0] == 'SRV-6':\n"
        f"            item.add_marker({marker})\n",
    )
    verdicts = {c["id"]: (c["verdict"], c["detail"]) for c in document["clauses"]}
    assert verdicts["SRV-6"] == expected
    assert document["stopped"] is None


def test_clauses_a_session_never_reached_are_errors_whatever_pytest_says(pytester, tmp_path):
    """A session that ends before its last clause without saying so (a plugin that stops the loop, an exit status
    of 0) must not leave clauses out of the report: each unreached one is ``error``."""
    from metro_e2e.conformance.catalogue import CLAUSES
    from metro_e2e.conformance.context import Options
    from metro_e2e.conformance.engine import requested

    result, document = _suite_report(
        pytester,
        tmp_path,
        "import pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_runtestloop(session):\n"
        "    items = session.items[:3]\n"
        "    for item, nxt in zip(items, items[1:] + [None]):\n"
        "        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nxt)\n"
        "    return True\n",
    )
    assert result.ret == 1  # never 0: the session did not complete
    assert document["stopped"] == "ended early (pytest did not say why)"
    verdicts = {c["id"]: (c["verdict"], c["detail"]) for c in document["clauses"]}
    assert sorted(verdicts) == sorted(c.id for c in CLAUSES)
    assert verdicts["GW-1"][0] == "failed"
    left_out = {c.id for c in CLAUSES if requested(c, Options())}  # skipped with the option that enables them
    assert {c.id for c in CLAUSES[3:] if verdicts[c.id][0] == "skipped"} == left_out - {c.id for c in CLAUSES[:3]}
    unreached = [c.id for c in CLAUSES[3:] if c.id not in left_out]
    assert unreached and all(
        verdicts[c]
        == ("error", "not run: the session ended early (pytest did not say why) before it reached this clause")
        for c in unreached
    ), verdicts


def test_a_second_signal_during_cleanup_still_writes_the_report_with_its_verdicts(pytester, tmp_path):
    """SIGTERM after SIGINT can land in the namespace cleanup, which pytest's teardown does not catch: the report
    keeps the verdicts, says the run was interrupted and that cleanup did not finish."""
    _, document = _suite_report(
        pytester,
        tmp_path,
        "import metro_e2e.conformance.context as context\n"
        "def interrupted(ctx):\n"
        "    raise KeyboardInterrupt('SIGTERM received')\n"
        "context.cleanup = interrupted\n"
        "def pytest_runtest_setup(item):\n"  # the first signal: the session's teardown then runs the cleanup
        "    if item.get_closest_marker('clause').args[0] == 'S3-1':\n"
        "        raise KeyboardInterrupt\n",
    )
    assert document["stopped"] == "was interrupted"
    assert document["clauses"][0]["id"] == "GW-1" and document["clauses"][0]["verdict"] == "failed"
    assert len(document["leftovers"]) == 1 and document["leftovers"][0].startswith("cleanup did not finish: ")


def test_two_sessions_in_one_interpreter_share_no_state(pytester, tmp_path, monkeypatch):
    """Options, verdicts and the report belong to one session (its config.stash): a second session in the same
    process starts from nothing, and takes its options from its own ini keys."""
    import json

    from metro_e2e.conformance.runner import SUITE

    monkeypatch.delenv("METRO_URL", raising=False)
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    common = ["-p", "no:cacheprovider", "--metro-url", "http://127.0.0.1:9", "--pyargs", SUITE]
    pytester.runpytest_inprocess("--metro-skip", "S3", "--metro-report-json", str(first), *common)
    pytester.makeini(f"[pytest]\nmetro_quick = true\nmetro_report_json = {second}\n")
    pytester.runpytest_inprocess(*common)
    one = {c["id"]: c for c in json.loads(first.read_text())["clauses"]}
    two = {c["id"]: c for c in json.loads(second.read_text())["clauses"]}
    assert one["S3-1"]["verdict"] == "skipped" and one["S3-1"]["detail"].startswith("--skip S3")
    assert one["S3-2"]["verdict"] == "skipped" and one["MLF-1"]["verdict"] == "blocked"
    assert two["GW-1"]["verdict"] == "failed" and two["S3-1"]["verdict"] == "blocked"  # no --skip S3 left over
    assert two["S3-2"] == {**two["S3-2"], "verdict": "skipped", "detail": "not part of --quick (run without --quick)"}
    assert json.loads(second.read_text())["mode"] == "quick" and json.loads(first.read_text())["mode"] == "default"


def test_every_setting_has_an_ini_key(pytester, monkeypatch):
    monkeypatch.delenv("METRO_MODELS_BUCKET", raising=False)
    pytester.makeini("[pytest]\nmetro_models_bucket = other-models\nmetro_read_timeout = 7\n")
    pytester.makepyfile(
        "def test_y(metro_config):\n"
        "    assert metro_config.models_bucket == 'other-models' and metro_config.read_timeout == 7.0\n"
        "    assert metro_config.source_of('models_bucket') == 'ini option metro_models_bucket'\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_plugin_options_keep_their_names_and_an_empty_one_is_a_usage_error(pytester, monkeypatch):
    """The --metro-* options are named after their Options field (as before the options were declared once), and
    an empty value on the command line is one usage error, not a clause skipped quietly (SRV-5 without a restart
    command)."""
    from metro_e2e.conformance.runner import SUITE

    monkeypatch.delenv("METRO_URL", raising=False)
    options = (
        "--metro-quick --metro-skip --metro-allow-promote --metro-restart-serving --metro-strict --metro-report-json "
        "--metro-evidence-dir --metro-step-image --metro-latency-budget-ms --metro-restart-timeout-s --metro-progress"
    )
    pytester.runpytest("--help").stdout.fnmatch_lines_random([f"*{o}*" for o in options.split()])
    common = ["-p", "no:cacheprovider", "--metro-url", "http://127.0.0.1:9", "--pyargs", SUITE]
    result = pytester.runpytest_subprocess("--metro-restart-serving", "", *common)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*metro-e2e: --metro-restart-serving is empty (give a value or leave it out)*"])


def test_catalogue_order_survives_a_conftest_that_reorders_tests(pytester, tmp_path):
    """The clause tests run in catalogue order even when a conftest reorders the items (the plugin sorts last):
    else dependents run first and are blocked for the wrong reason."""
    _, document = _suite_report(pytester, tmp_path, "def pytest_collection_modifyitems(items):\n    items.reverse()\n")
    verdicts = {c["id"]: (c["verdict"], c["detail"]) for c in document["clauses"]}
    assert verdicts["GW-1"][0] == "failed"
    assert verdicts["S3-1"] == ("blocked", "depends on GW-1, which failed")


def test_an_empty_ini_key_is_unset_and_an_empty_url_option_is_a_usage_error(pytester, monkeypatch):
    from metro_e2e.conformance.runner import SUITE

    monkeypatch.delenv("METRO_URL", raising=False)
    pytester.makeini("[pytest]\nmetro_quick =\nmetro_strict = yes\nmetro_url =\n")
    pytester.makepyfile(
        "from metro_e2e.conformance.session import options_of, target_given\n"
        "def test_y(pytestconfig):\n"
        "    options = options_of(pytestconfig)\n"
        "    assert (options.quick, options.strict) == (False, True) and not target_given(pytestconfig)\n"
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--metro-url", "", "--pyargs", SUITE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*metro-e2e: setting url = '' (from command-line option --url) is invalid*"])


def test_native_toml_ini_keys_and_a_bad_ini_value_named_as_written(pytester, monkeypatch):
    """pytest.toml gives a flag's key as a bool and a number's as a number; a value that is not positive is one
    usage error naming the ini key the user wrote."""
    monkeypatch.delenv("METRO_URL", raising=False)
    pytester.makefile(".toml", pytest="[pytest]\nmetro_strict = true\nmetro_latency_budget_ms = 300\n")
    pytester.makepyfile(
        "from metro_e2e.conformance.session import options_of\n"
        "def test_y(pytestconfig):\n"
        "    assert (options_of(pytestconfig).strict, options_of(pytestconfig).latency_budget_ms) == (True, 300.0)\n"
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    from metro_e2e.conformance.runner import SUITE

    pytester.makefile(".toml", pytest="[pytest]\nmetro_latency_budget_ms = 0\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--metro-url", "http://127.0.0.1:9", "--pyargs", SUITE
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*metro-e2e: ini metro_latency_budget_ms 0 is not a positive number*"])


def test_check_under_pytests_own_selection_reports_what_it_left_out(tmp_path):
    """PYTEST_ADDOPTS=-k that leaves clauses out: the clauses it kept run, the others are error (check runs every
    clause), and the run fails; never a usage error that runs nothing."""
    import json
    import os
    import subprocess
    import sys

    report = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRO_")} | {"PYTEST_ADDOPTS": "-k GW"}
    done = subprocess.run(
        [sys.executable, "-m", "metro_e2e.cli", "check", "--url", "http://127.0.0.1:9", "--report-json", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    clauses = {c["id"]: c for c in json.loads(report.read_text())["clauses"]}
    assert clauses["GW-1"]["verdict"] == "failed"
    assert clauses["S3-1"]["verdict"] == "error"
    assert clauses["S3-1"]["detail"].startswith("not run: pytest's own selection left it out")


def test_an_ini_number_that_is_not_one_is_a_usage_error_naming_the_key(pytester, monkeypatch):
    from metro_e2e.conformance.runner import SUITE

    monkeypatch.delenv("METRO_URL", raising=False)
    pytester.makeini("[pytest]\nmetro_latency_budget_ms = fast\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--metro-url", "http://127.0.0.1:9", "--pyargs", SUITE
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*metro-e2e: ini metro_latency_budget_ms = 'fast' is not a number (give a number)*"])


@pytest.mark.parametrize(
    "env",
    [
        {"PYTEST_PLUGINS": "metro_e2e"},  # the plugin named again: loaded once, not a crash
        {"PYTEST_PLUGINS": "xdist", "PYTEST_ADDOPTS": "-p xdist -n 2"},  # workers would not get check's options
        {"PYTEST_ADDOPTS": "-p metro_e2e -p hypothesis"},
    ],
    ids=["plugin-named-again", "xdist-asked-for", "plugins-in-addopts"],
)
def test_check_keeps_its_one_session_whatever_plugins_the_environment_names(tmp_path, env):
    """check runs one session in its own process with only its own plugin: a PYTEST_PLUGINS or PYTEST_ADDOPTS that
    names plugins (a CI job that disables autoloading and lists them) neither crashes it nor starts xdist workers
    that would run without its options. GW-1 fails against the closed port and every other clause is blocked: the
    whole run happened, once."""
    import json
    import os
    import subprocess
    import sys

    report = tmp_path / "r.json"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("METRO_", "PYTEST_"))}
    done = subprocess.run(
        [sys.executable, "-m", "metro_e2e.cli", "check", "--url", "http://127.0.0.1:9", "--report-json", str(report)],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    verdicts = {c["id"]: c["verdict"] for c in json.loads(report.read_text())["clauses"]}
    assert verdicts.pop("GW-1") == "failed", done.stdout[-2000:]
    assert set(verdicts.values()) <= {"blocked", "skipped"} and "blocked" in verdicts.values(), verdicts
    assert "bringing up nodes" not in done.stdout + done.stderr and "workers" not in done.stdout + done.stderr
