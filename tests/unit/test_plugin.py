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
