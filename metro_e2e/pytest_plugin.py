"""pytest plugin for metro-e2e (registered through the ``pytest11`` entry point).

A thin layer over the library: the ``metro`` option group and ``metro_*`` ini keys (generated from the
declarations of the settings, ``config.py``, and of the run's options, ``conformance/options.py``); the layer
markers ``unit`` / ``integration`` / ``live`` applied from each test's folder; the ``metro_config`` fixture; and,
for the live tier, the ``clause("ID")`` marker, the ``metro_run`` fixture and the per-session hooks of
``conformance/hooks.py``. Session state lives in ``config.stash``; this module keeps none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

LAYERS = ("unit", "integration", "live")


def pytest_addoption(parser: pytest.Parser) -> None:
    from metro_e2e.config import SETTINGS
    from metro_e2e.conformance.options import add_pytest_options

    group = parser.getgroup("metro", "metro-e2e: the Metro platform under test")
    url = next(s for s in SETTINGS if s.name == "url")  # the one setting with its own pytest option
    group.addoption("--metro-url", dest="metro_url", default=None, help=f"{url.help} (env {url.env}, ini {url.ini})")
    for setting in SETTINGS:
        parser.addini(setting.ini, f"{setting.help} (env {setting.env})", default="")
    add_pytest_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from metro_e2e.conformance.hooks import SessionHooks, SessionOrder

    for layer, text in (
        ("unit", "no network: moto-mocked S3, sqlite MLflow"),
        ("integration", "real servers on loopback (the local Metro stack)"),
        ("live", "the contract clauses against a gateway URL"),
    ):
        config.addinivalue_line("markers", f"{layer}: {text} (applied from the test's folder)")
    config.addinivalue_line("markers", "clause(id): the CONTRACT.md clause this test proves (exactly one per clause)")
    config.pluginmanager.register(SessionHooks(config), f"metro-e2e-session-{id(config)}")
    config.pluginmanager.register(SessionOrder(), f"metro-e2e-order-{id(config)}")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).parts
        for layer in LAYERS:
            if "tests" in parts and layer in parts:
                item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture(scope="session")
def metro_config(pytestconfig: pytest.Config):
    """The platform settings for this session: ``--metro-url`` > ``METRO_*`` env > ``metro_*`` ini > defaults."""
    from metro_e2e.conformance.session import settings

    return settings(pytestconfig)


@pytest.fixture(scope="session")
def metro_run(request: pytest.FixtureRequest, metro_config):
    """The live tier's run (``conformance/session.py``): with no URL it checks the local stack; it cleans up its
    namespace at the end."""
    from metro_e2e.conformance.session import opened

    with opened(request.config, metro_config) as run:
        yield run


@pytest.fixture(autouse=True)
def _metro_clause_gate(request: pytest.FixtureRequest) -> None:
    """Before a clause's test: skip it (with the enabling option) or block it (a dependency failed)."""
    marker = request.node.get_closest_marker("clause")
    if marker is not None:
        request.getfixturevalue("metro_run").gate(marker.args[0])
