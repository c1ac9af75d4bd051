"""A local Metro platform of real processes on loopback (see ``stack.LocalStack``)."""

from metro_e2e.stack.process import StackError
from metro_e2e.stack.stack import LocalStack, StackOptions

__all__ = ["LocalStack", "StackError", "StackOptions"]
