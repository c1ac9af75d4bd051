"""How every metro-e2e command ends: one line for an error, and the error's exit code."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable

from metro_e2e.errors import MetroE2EError


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Run ``body``; turn any exception into one stderr line and an exit code (tracebacks only with METRO_DEBUG)."""
    logging.basicConfig(level=os.environ.get("METRO_LOG_LEVEL", "WARNING").upper(), stream=sys.stderr)
    try:
        return body()
    except MetroE2EError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place an unexpected error becomes one line
        if os.environ.get("METRO_DEBUG"):
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"{prog}: internal error: {type(exc).__name__}: {first} (set METRO_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
