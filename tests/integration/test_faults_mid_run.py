"""Faults injected while ``metro-e2e check`` runs: the failing component's clause fails first, dependents are
blocked, and the run ends within a bound set by the configured timeouts.

One seeded local stack; each case starts a check against it, waits for the progress line of the clause just
before the component's first clause, then kills the component's process group (SIGKILL) or freezes it
(SIGSTOP: it accepts connections and never answers, the "slow" extreme), and lets the check finish. The
component is restored (SIGCONT, or started again) before the next case; killing S3 (moto keeps its data in
memory) comes last.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from metro_e2e.conformance.catalogue import BY_ID, CLAUSES

from .conftest import clean_env

# off the default run (CI runs `pytest -n 2 -m slow`): eight checks with a service killed or frozen mid-run, each in a new interpreter (about 3 minutes)
pytestmark = pytest.mark.slow

CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 2, 3
BOUND_S = 150  # a run with every timeout spent, well below what a hang would take
ORDER = [c.id for c in CLAUSES]
LAST_S3 = [c.id for c in CLAUSES if c.component == "S3"][-1]  # the fault lands once every S3 clause has run

# component -> (the clause after whose progress line the fault lands, the clauses it may fail first)
TARGETS = {
    "s3": ("GW-1", ("S3-",)),
    "mlflow": (LAST_S3, ("MLF-",)),
    "serving": ("PRM-1", ("SRV-",)),
    "gateway": (LAST_S3, ("MLF-", "PRM-", "SRV-")),
}
CASES = [(c, "frozen") for c in ("s3", "mlflow", "serving", "gateway")] + [
    (c, "killed") for c in ("mlflow", "serving", "gateway", "s3")
]


def _group(stack, component: str) -> int:
    pid = stack.serving.pid if component == "serving" else stack.services[component].pid
    assert pid, f"{component} is not running"
    return os.getpgid(pid)


def _restore(stack, component: str, how: str, pgid: int) -> None:
    if how == "frozen":
        os.killpg(pgid, signal.SIGCONT)
    elif component != "s3":  # killing S3 comes last: moto's data went with it
        stack.restart_service(component)


def _dependents(failed: str) -> set[str]:
    out: set[str] = set()
    for clause in CLAUSES:  # catalogue order: dependencies come first
        if failed in clause.depends_on or out & set(clause.depends_on):
            out.add(clause.id)
    return out


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.mark.parametrize(("component", "how"), CASES, ids=[f"{c}-{h}" for c, h in CASES])
def test_fault_mid_run_fails_the_component_first_and_blocks_its_dependents(
    metro_seeded_stack, component, how, tmp_path
):
    trigger, first_ids = TARGETS[component]
    report_path = tmp_path / "report.json"
    env = clean_env(METRO_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT_S), METRO_READ_TIMEOUT=str(READ_TIMEOUT_S))
    argv = [str(Path(sys.executable).with_name("metro-e2e")), "check", "--url", metro_seeded_stack.gateway_url]
    started = time.monotonic()
    proc = subprocess.Popen(
        [*argv, "--skip", "KFP", "--report-json", str(report_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    pgid = _group(metro_seeded_stack, component)
    try:
        while True:  # wait for the trigger clause's progress line
            line = lines.get(timeout=max(1.0, 60 - (time.monotonic() - started)))
            assert line is not None, "check ended before the trigger:\n" + "".join(seen)
            seen.append(line)
            if line.split()[:1] == [trigger]:
                break
        os.killpg(pgid, signal.SIGSTOP if how == "frozen" else signal.SIGKILL)
        faulted_at = time.monotonic()
        try:
            proc.wait(timeout=BOUND_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"check still running {BOUND_S} s after the fault; last output:\n" + "".join(seen[-10:]))
    finally:
        if proc.poll() is None:
            proc.kill()
        _restore(metro_seeded_stack, component, how, pgid)
    after_fault = time.monotonic() - faulted_at
    while (line := lines.get(timeout=10)) is not None:
        seen.append(line)

    assert proc.returncode == 1, "".join(seen[-30:])
    verdicts = {c["id"]: c for c in json.loads(report_path.read_text())["clauses"]}
    after = ORDER[ORDER.index(trigger) + 1 :]
    first = next(i for i in after if verdicts[i]["verdict"] not in ("passed", "skipped"))
    assert first.startswith(first_ids), (first, verdicts[first])
    assert verdicts[first]["verdict"] == "failed", verdicts[first]
    assert verdicts[first]["duration_s"] <= verdicts[first]["budget_s"], verdicts[first]
    # the detail says what happened in words a user acts on: a timeout names its setting; a dead service is a
    # refused connection (gateway) or the gateway's 502 / "not answering" (a service behind it)
    # (a gateway killed while a request is in flight closes that connection without an answer)
    cue = (
        r"METRO_READ_TIMEOUT"
        if how == "frozen"
        else r"(HTTP|answered) 502|connection refused|not answering|closed without an answer"
    )
    assert re.search(cue, verdicts[first]["detail"]), verdicts[first]["detail"]
    for dep in _dependents(first):
        assert verdicts[dep]["verdict"] in ("blocked", "skipped"), (dep, verdicts[dep])
    assert not [i for i, c in verdicts.items() if c["verdict"] == "error"], verdicts  # every clause reached a verdict
    before = [i for i in ORDER[: ORDER.index(trigger) + 1] if BY_ID[i].mode != "promote" and not i.startswith("KFP")]
    assert all(verdicts[i]["verdict"] in ("passed", "warned") for i in before), verdicts
    assert after_fault < BOUND_S
    print(f"{component} {how}: {first} failed after {after_fault:.1f} s: {verdicts[first]['detail'][:160]}")
