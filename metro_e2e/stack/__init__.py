"""A local Metro platform of real processes on loopback (see ``stack.LocalStack``).

``LocalStack`` and ``StackOptions`` are loaded on first use: the CLI reads the
profile names from ``mlflow_server`` without importing MLflow.
"""

from metro_e2e.errors import StackError

__all__ = ["LocalStack", "StackError", "StackOptions"]


def __getattr__(name: str):
    if name in ("LocalStack", "StackOptions"):
        from metro_e2e.stack import stack

        return getattr(stack, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
