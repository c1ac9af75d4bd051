"""How every metro-e2e command ends: one line for an error, and the error's exit code."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator

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
    except BrokenPipeError:  # the reader went away (`metro-e2e report RUN | head`): stop quietly, as `cat` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit must not fail
        return 141  # 128 + SIGPIPE, the shell's code for a writer whose pipe closed
    except Exception as exc:  # noqa: BLE001 - the one place an unexpected error becomes one line
        if os.environ.get("METRO_DEBUG"):
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"{prog}: internal error: {type(exc).__name__}: {first} (set METRO_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (what a cancelled CI job or ``kubectl delete`` sends after SIGINT) like Ctrl-C in the block,
    so a conformance run still cleans up and writes its reports. Main thread only; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
