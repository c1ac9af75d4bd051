"""The one poll loop: done after N attempts, a timeout that says what it last saw, a deadline it does not overshoot."""

from __future__ import annotations

import time

import pytest

from metro_e2e._poll import NotYet, PollTimeout, poll
from metro_e2e.errors import MetroE2EError


def _attempts(answers: list):
    """An attempt giving ``answers`` in turn, and the list of the times it was called."""
    calls: list[float] = []

    def attempt():
        calls.append(time.monotonic())
        return answers[len(calls) - 1]

    return attempt, calls


def test_done_after_n_attempts_returns_the_result_even_a_falsy_one():
    attempt, calls = _attempts([NotYet("a"), NotYet("b"), 0])
    assert poll(attempt, timeout_s=5, interval_s=0.01, what="x") == 0
    assert len(calls) == 3
    assert all(later - earlier >= 0.009 for earlier, later in zip(calls, calls[1:], strict=False))


def test_first_answer_done_means_one_attempt_and_no_sleep():
    attempt, calls = _attempts([None])
    started = time.monotonic()
    assert poll(attempt, timeout_s=5, interval_s=5, what="x") is None
    assert len(calls) == 1 and time.monotonic() - started < 0.5


def test_timeout_carries_what_the_last_attempt_saw():
    seen = iter(range(1000))
    with pytest.raises(PollTimeout) as info:
        poll(lambda: NotYet(f"HTTP 503 #{next(seen)}"), timeout_s=0.1, interval_s=0.02, what="the model server")
    error = info.value
    assert error.seen == f"HTTP 503 #{error.attempts - 1}" and error.attempts >= 3
    assert error.what == "the model server" and error.timeout_s == 0.1 and error.elapsed_s >= 0.1
    assert str(error).startswith("the model server: not done within 0.1 s") and "last saw HTTP 503" in str(error)
    assert not isinstance(error, MetroE2EError), "each caller turns it into its own error"


def test_the_sleep_never_overshoots_the_deadline():
    attempt, calls = _attempts([NotYet(1), NotYet(2), "late"])
    started = time.monotonic()
    with pytest.raises(PollTimeout) as info:
        poll(attempt, timeout_s=0.2, interval_s=30, what="x")  # one attempt now, the last one at the deadline
    assert len(calls) == 2 and info.value.seen == 2
    assert 0.2 <= calls[1] - started < 0.35 and time.monotonic() - started < 0.35


@pytest.mark.parametrize("timeout_s", [0, -1])
def test_no_time_left_is_exactly_one_attempt(timeout_s):
    attempt, calls = _attempts([NotYet("once"), "never asked"])
    with pytest.raises(PollTimeout, match="last saw once"):
        poll(attempt, timeout_s=timeout_s, interval_s=0.01, what="x")
    assert len(calls) == 1


def test_an_exception_from_the_attempt_ends_the_poll_as_it_is():
    calls = []

    def attempt():
        calls.append(1)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        poll(attempt, timeout_s=5, interval_s=0.01, what="x")
    assert calls == [1]


def test_a_negative_interval_is_refused():
    with pytest.raises(ValueError, match="interval_s must be >= 0"):
        poll(lambda: 1, timeout_s=1, interval_s=-1, what="x")
