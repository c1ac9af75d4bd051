"""pytest plugin for metro-e2e (registered through the ``pytest11`` entry point).

A thin layer over the library: one option group ``metro`` with matching
``metro_*`` ini keys, the layer markers ``unit`` / ``integration`` / ``live``
applied from each test's folder, and the ``metro_config`` fixture resolved
with the library's precedence (option > ``METRO_*`` env > ini > default).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from metro_e2e.config import MetroConfig, load_config

LAYERS = ("unit", "integration", "live")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("metro", "metro-e2e: the Metro platform under test")
    group.addoption(
        "--metro-url",
        dest="metro_url",
        default=None,
        help="gateway URL of the platform under test (env METRO_URL, ini metro_url)",
    )
    parser.addini("metro_url", "gateway URL of the platform under test", default="")


def pytest_configure(config: pytest.Config) -> None:
    for layer, text in (
        ("unit", "no network: moto-mocked S3, sqlite MLflow"),
        ("integration", "real servers on loopback (the local Metro stack)"),
        ("live", "the contract clauses against a gateway URL"),
    ):
        config.addinivalue_line("markers", f"{layer}: {text} (applied from the test's folder)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).parts
        for layer in LAYERS:
            if "tests" in parts and layer in parts:
                item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture(scope="session")
def metro_config(pytestconfig: pytest.Config) -> MetroConfig:
    """The platform settings for this session: ``--metro-url`` > ``METRO_*`` env > ini > defaults."""
    return load_config(
        cli={"url": pytestconfig.getoption("metro_url")},
        environ=os.environ,
        ini={"url": pytestconfig.getini("metro_url")},
    )
