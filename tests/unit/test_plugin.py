"""The pytest plugin, loaded through its pytest11 entry point.

Layer markers from the folder, the metro option group and the metro_config fixture.
"""

from __future__ import annotations

pytest_plugins = ["pytester"]


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


def test_an_interrupt_pytest_cannot_show_still_ends_as_interrupted(pytester):
    """Python 3.11 can leave a frame of an interrupted traceback with no line number (a cancelled CI job's SIGINT
    landing on such an instruction); pytest's terminal reporter then crashed formatting it (TypeError in
    ``TracebackEntry.lineno``) and ``check`` reported an internal error (exit 1) for a cancelled run. The frame here
    is made without a line table, which gives the same traceback."""
    pytester.makepyfile(
        "import types\n"
        "def _raise():\n"
        "    raise KeyboardInterrupt\n"
        "def test_z():\n"
        "    types.FunctionType(_raise.__code__.replace(co_linetable=b''), {})()\n"
    )
    result = pytester.runpytest_subprocess()  # in process, pytester re-raises the interrupt into this session
    assert result.ret == 2, result.stderr.str()  # pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])


def test_clauses_a_session_never_reached_are_errors_whatever_pytest_says(pytester, tmp_path):
    """A session that ends before its last clause without saying so (a plugin that stops the loop, an exit status
    of 0) must not leave clauses out of the report: each unreached one is ``error``."""
    import json

    from metro_e2e.conformance.catalogue import CLAUSES
    from metro_e2e.conformance.context import Options
    from metro_e2e.conformance.engine import requested
    from metro_e2e.conformance.runner import SUITE

    pytester.makeconftest(
        "import pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_runtestloop(session):\n"
        "    items = session.items[:3]\n"
        "    for item, nxt in zip(items, items[1:] + [None]):\n"
        "        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nxt)\n"
        "    return True\n"
    )
    report = tmp_path / "report.json"
    args = ["-p", "no:cacheprovider", "--metro-url", "http://127.0.0.1:9", "--metro-report-json", str(report)]
    pytester.runpytest_subprocess(*args, "--pyargs", SUITE)
    verdicts = {c["id"]: (c["verdict"], c["detail"]) for c in json.loads(report.read_text())["clauses"]}
    assert sorted(verdicts) == sorted(c.id for c in CLAUSES)
    assert verdicts["GW-1"][0] == "failed"
    left_out = {c.id for c in CLAUSES if requested(c, Options())}  # skipped with the option that enables them
    assert {c.id for c in CLAUSES[3:] if verdicts[c.id][0] == "skipped"} == left_out - {c.id for c in CLAUSES[:3]}
    unreached = [c.id for c in CLAUSES[3:] if c.id not in left_out]
    assert unreached and all(verdicts[c] == ("error", "not run: the session ended early (pytest did not say why) "
                                             "before it reached this clause") for c in unreached), verdicts
