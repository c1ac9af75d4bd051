"""The suite's timeout and retry policy for MLflow's client, as the environment variables MLflow reads.

Kept apart from ``registry`` so that setting the policy does not import MLflow (about 3 s): a run whose clauses
never call MLflow's client (``check --quick``) does not pay for it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from metro_e2e.config import MetroConfig

MLFLOW_ATTEMPTS = 2  # one retry, with no wait, on 429/5xx and connection errors


def policy_env(config: MetroConfig) -> dict[str, str]:
    """MLflow's own settings for the suite's HTTP policy: every request times out after ``read_timeout``,
    is retried at most once without waiting, and a ``Retry-After`` header cannot stretch that."""
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(max(1, config.read_timeout))),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(MLFLOW_ATTEMPTS - 1),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
        "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
    }


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then put back what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def client_policy(config: MetroConfig) -> Iterator[None]:
    """Every MLflow request made in the block follows the suite's timeout and retry policy (``MLFLOW_ATTEMPTS``),
    not MLflow's default of 7 retries with exponential backoff and a 120 s timeout."""
    with environ(policy_env(config)):
        yield
