"""The one poll loop: call an attempt every ``interval_s`` until it is done or ``timeout_s`` passes.

An attempt is a function of no arguments. It returns either its result (the
poll is done and ``poll`` returns that value, whatever it is) or ``NotYet(seen)``,
where ``seen`` is what this attempt observed ("HTTP 503 ...", a run state,
a response): the last one is reported if the poll times out::

    def served() -> list | NotYet:
        try:
            predictions = client.predict_frame(rows).predictions
        except ServingError as exc:
            return NotYet(str(exc))          # an expected failure is something seen, and tried again
        return predictions if predictions == expected else NotYet(f"{differ(predictions)} rows differ")

    try:
        predictions = poll(served, timeout_s=60, interval_s=2, what="the new model to be served")
    except PollTimeout as exc:
        raise ServingError(f"... within 60 s; last saw {exc.seen}", ...) from None

An exception raised by the attempt ends the poll at once and propagates as it
is (not retried): an attempt catches the failures it means to wait out and
returns them as ``NotYet``. ``PollTimeout`` is not a ``MetroE2EError``: each
caller turns it into its own error, in its own words.

Timing: the first attempt runs at once; between attempts the poll sleeps
``interval_s``, but never past the deadline, so the last attempt runs at the
deadline and the poll ends at most one attempt's duration after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay

T = TypeVar("T")

__all__ = ["NotYet", "PollTimeout", "poll"]


@dataclass(frozen=True)
class NotYet:
    """An attempt's answer "not done yet", with what it saw (reported by ``PollTimeout`` if it is the last)."""

    seen: Any = None


class PollTimeout(Exception):  # noqa: N818 - the name says what happened, like TimeoutError
    """The attempts were not done within ``timeout_s``; ``seen`` is what the last attempt saw."""

    def __init__(self, what: str, *, timeout_s: float, seen: Any, attempts: int, elapsed_s: float) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.seen = seen
        self.attempts = attempts
        self.elapsed_s = elapsed_s  # from the first attempt's start to the last attempt's end
        super().__init__(f"{what}: not done within {timeout_s:g} s ({attempts} attempts); last saw {seen}")


def poll(attempt: Callable[[], T | NotYet], *, timeout_s: float, interval_s: float, what: str) -> T:
    """Call ``attempt`` until it returns something other than ``NotYet``, and return that.

    Raises ``PollTimeout`` (carrying the last ``NotYet.seen``) once an attempt ends ``timeout_s`` or more after
    the first one began; ``timeout_s <= 0`` makes exactly one attempt. Exceptions from ``attempt`` propagate.
    """
    if interval_s < 0:
        raise ValueError(f"poll({what!r}): interval_s must be >= 0, not {interval_s}")

    def until_deadline(state: RetryCallState) -> float:
        return max(0.0, min(interval_s, timeout_s - (state.seconds_since_start or 0.0)))

    def timed_out(state: RetryCallState) -> T:  # tenacity calls it with the last attempt's outcome, a NotYet
        raise PollTimeout(
            what,
            timeout_s=timeout_s,
            seen=state.outcome.result().seen if state.outcome else None,
            attempts=state.attempt_number,
            elapsed_s=state.seconds_since_start or 0.0,
        )

    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=until_deadline,
        retry=retry_if_result(lambda outcome: isinstance(outcome, NotYet)),
        retry_error_callback=timed_out,
    )
    return retrying(attempt)  # type: ignore[return-value] - a NotYet is retried or ends in timed_out
