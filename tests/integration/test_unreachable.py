"""Unreachable endpoints on loopback: a clear error within the configured timeouts, never a hang."""

from __future__ import annotations

import socket
import time

import pytest

from metro_e2e import data, training
from metro_e2e.config import load_config
from metro_e2e.errors import EndpointUnreachable
from metro_e2e.storage import Storage


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_is_reported_quickly(closed_port):
    config = load_config(environ={"METRO_TRACKING_URI": f"http://127.0.0.1:{closed_port}", "METRO_READ_TIMEOUT": "2"})
    started = time.monotonic()
    with pytest.raises(EndpointUnreachable, match=f"MLflow at http://127.0.0.1:{closed_port}"):
        training.train(config, data.split(data.iris_frame()))
    assert time.monotonic() - started < 15


def test_unreachable_s3_is_reported_quickly(closed_port):
    config = load_config(environ={"METRO_URL": f"http://127.0.0.1:{closed_port}", "METRO_CONNECT_TIMEOUT": "1"})
    started = time.monotonic()
    with pytest.raises(EndpointUnreachable, match="did not answer"):
        Storage(config).get_bytes("ml-data", "iris/iris.csv")
    assert time.monotonic() - started < 10
