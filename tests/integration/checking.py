"""Running ``metro-e2e check`` from a test and asserting its exact outcome.

A breakage test is trusted only when it pins the whole outcome: exactly the clauses it breaks failed (each
detail naming the cause), exactly their dependents that the run's options would have checked are blocked, and
every other clause passed (or was skipped or warned as on a healthy platform). ``expect_outcome`` asserts that.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

from metro_e2e.conformance.catalogue import BY_ID, CLAUSES

# What a `metro-e2e check` run imports: its runner and checks at start, then MLflow, scikit-learn and the workflow
# modules before the clauses that use them (outside their budgets). A child forked from a process that holds them
# starts in a tenth of a second instead of the five to seven an interpreter pays (docs/testing.md). It therefore
# never pays those imports: a test that asserts the seconds a clause took runs the command fresh.
PRELOAD = [
    "metro_e2e.cli",
    "metro_e2e.conformance.runner",
    "metro_e2e.conformance.checks",
    "metro_e2e.registry",
    "metro_e2e.training",
    "mlflow.pyfunc",
    "sklearn.model_selection",
]


def check(
    tmp_path, *args: str, env: dict | None = None, timeout: float = 600, fresh: bool = False
) -> tuple[int, dict, str]:
    """Run ``metro-e2e check --report-json`` with ``args``; (exit code, the JSON report, stdout + stderr).

    The command runs in a process of its own, with ``env`` over this process's environment, either forked from a
    server that has imported ``PRELOAD`` (the default) or, with ``fresh``, as ``python -m metro_e2e.cli`` (the
    tests of the command itself, and one that keeps the two equal, use that).
    """
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    argv = ["check", "--report-json", str(report), *args]
    environ = {**os.environ, **(env or {})}
    if fresh:
        done = subprocess.run(
            [sys.executable, "-m", "metro_e2e.cli", *argv], capture_output=True, text=True, timeout=timeout, env=environ
        )
        code, out = done.returncode, done.stdout + done.stderr
    else:
        code, out = _forked(argv, environ, tmp_path, timeout)
    assert report.exists(), out[-4000:]
    return code, json.loads(report.read_text()), out


def _forked(argv: list[str], environ: dict, folder, timeout: float) -> tuple[int, str]:
    import multiprocessing
    import uuid

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # read when the server starts: once per test process
    outputs = [folder / f".check-{uuid.uuid4().hex[:8]}.{name}" for name in ("stdout", "stderr")]
    process = context.Process(
        target=_run_cli, args=(argv, environ, os.getcwd(), [str(o) for o in outputs]), daemon=False
    )
    process.start()
    try:
        process.join(timeout)
        if process.is_alive():
            raise AssertionError(f"metro-e2e {' '.join(argv)} did not finish in {timeout} s")
    finally:  # as subprocess.run does: the command does not outlive the test (it would act on a shared stack)
        if process.is_alive():
            process.kill()
            process.join(10)
    out = "".join(o.read_text(errors="replace") for o in outputs if o.exists())
    for o in outputs:
        o.unlink(missing_ok=True)
    return process.exitcode, out


def _run_cli(argv: list[str], environ: dict, cwd: str, outputs: list[str]) -> None:
    """In the forked process: the test's environment and folder, stdout and stderr to files, ``metro-e2e`` with
    ``argv``. (Unlike an interpreter's exit, multiprocessing's does not run ``atexit`` handlers; the verdicts are
    in the report, written before.)"""
    os.chdir(cwd)
    for fd, path in zip((1, 2), outputs, strict=True):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(environ)
    from metro_e2e import cli

    sys.exit(cli.main(argv))


def verdicts(report: dict) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in report["clauses"]}


def detail(report: dict, clause_id: str) -> str:
    return next(c["detail"] for c in report["clauses"] if c["id"] == clause_id)


def dependents(failed: set[str]) -> set[str]:
    """Every clause that depends on one of ``failed``, directly or through another (catalogue order)."""
    out: set[str] = set()
    for clause in CLAUSES:
        if set(clause.depends_on) & (failed | out):
            out.add(clause.id)
    return out


def expect_outcome(
    report: dict,
    failed: dict[str, str],
    *,
    warned: tuple[str, ...] = ("S3-5",),
    blocked_also: tuple[str, ...] = (),
) -> None:
    """Exactly the clauses of ``failed`` failed, each detail matching its regex (the cause); their dependents
    that were not left out by the options are blocked, naming a failed clause; every other clause passed, was
    skipped by the options, or is one of ``warned`` (the local stack runs with the published credentials).
    No clause is ``error``.
    """
    v = verdicts(report)
    got_failed = {c for c, verdict in v.items() if verdict == "failed"}
    assert got_failed == set(failed), f"failed: {sorted(got_failed)}, expected {sorted(failed)}; all: {v}"
    for clause_id, cause in failed.items():
        assert re.search(cause, detail(report, clause_id)), (
            f"{clause_id}: {cause!r} not in {detail(report, clause_id)!r}"
        )
    expected_blocked = {c for c in dependents(set(failed)) | set(blocked_also) if v[c] != "skipped"}
    got_blocked = {c for c, verdict in v.items() if verdict == "blocked"}
    assert got_blocked == expected_blocked, f"blocked: {sorted(got_blocked)}, expected {sorted(expected_blocked)}"
    for clause_id in got_blocked:
        assert detail(report, clause_id).startswith("depends on "), detail(report, clause_id)
    for clause_id, verdict in v.items():
        if clause_id in got_failed | got_blocked:
            continue
        if verdict == "skipped":  # left out by the options, or depends on a clause they left out
            text = detail(report, clause_id)
            assert not text.startswith("depends on ") or "which was skipped" in text, (clause_id, text)
            continue
        allowed = {"passed", "warned"} if clause_id in warned else {"passed"}
        assert verdict in allowed, f"{clause_id} is {verdict}: {detail(report, clause_id)}"
        assert BY_ID[clause_id].level == "advisory" or verdict == "passed"


@contextlib.contextmanager
def broken_gateway(stack, **changes) -> Iterator[None]:
    """The stack's gateway reconfigured by ``changes`` (``faults=``, ``serving_redirect=``...) for the block."""
    saved = {k: getattr(stack.options, k) for k in changes}
    stack.reconfigure_gateway(**changes)
    try:
        yield
    finally:
        stack.reconfigure_gateway(**saved)
