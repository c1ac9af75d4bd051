"""Each component that answers 5xx, hangs or refuses fails its first clause within that clause's time budget.

The budget is declared in the catalogue (``docs/clauses.md``: seconds of work plus a number of requests that
may each wait out the connect and read timeouts) and enforced by the engine; here the failure must come from the
component's own answer, well inside the budget, not from the budget running out. One seeded stack; each case
points one route of its gateway at a server error, at a listener that never answers (a hang), or at a closed
port (nginx answers 502: refused behind the gateway). Timeouts are short (connect 2 s, read 3 s).
"""

from __future__ import annotations

import socket

import pytest

from metro_e2e.stack.gateway import Fault

from .checking import broken_gateway, check, expect_outcome

ENV = {"METRO_CONNECT_TIMEOUT": "2", "METRO_READ_TIMEOUT": "3"}
MLFLOW_API = r"^/mlflow/api/2\.0/mlflow/"
S3_ERROR = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code></Error>'

# component -> (the route it owns, the clauses that fail, the options that keep the run to what matters).
# S3's buckets are what S3-2 and S3-4 both read (each depends on S3-1 only), so both fail.
COMPONENTS = {
    "mlflow-tracking": (r"^/mlflow(/|$)", ("MLF-1",), ("--skip", "KFP", "S3", "SRV", "PRM")),
    "mlflow-registry": (
        MLFLOW_API + r"(registered-models|model-versions)/",
        ("MLF-5",),
        ("--skip", "KFP", "SRV", "PRM"),
    ),
    "s3": (r"^/ml-(models|data)(/|$)", ("S3-2", "S3-4"), ("--skip", "KFP", "MLF", "SRV", "PRM")),
    "model-server": (r"^/mlflow-model/", ("SRV-1",), ("--skip", "KFP", "S3", "MLF", "PRM")),
    "kfp": (r"^/pipeline", ("KFP-1",), ("--quick",)),
}
# how the failure reads in the clause's detail
CAUSES = {
    "5xx": r"500",
    "hang": r"no answer within 3 s \(METRO_READ_TIMEOUT\)|ReadTimeout|timed out",
    "refused": r"502",
}


@pytest.fixture(scope="module")
def ports():
    """A listener that accepts connections and never answers, and a port nothing listens on."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    yield {"hang": f"127.0.0.1:{silent.getsockname()[1]}", "refused": f"127.0.0.1:{closed.getsockname()[1]}"}
    silent.close()
    closed.close()


CASES = [(component, mode) for component in COMPONENTS for mode in CAUSES]


@pytest.mark.parametrize(("component", "mode"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_a_failing_component_fails_its_clause_within_the_budget(metro_seeded_stack, ports, tmp_path, component, mode):
    route, clause_ids, options = COMPONENTS[component]
    if mode == "5xx":
        body = S3_ERROR if component == "s3" else '{"error_code": "INTERNAL_ERROR", "message": "broken"}'
        fault = Fault(path=route, status=500, body=body, why=f"{component} answers 500")
    else:
        fault = Fault(path=route, proxy_to=ports[mode], why=f"{component} {mode}")
    with broken_gateway(metro_seeded_stack, faults=(fault,)):
        # fresh: a forked check has the suite's modules imported already, and this asserts the seconds a clause took
        code, report, out = check(
            tmp_path, "--url", metro_seeded_stack.gateway_url, *options, env=ENV, timeout=300, fresh=True
        )
    assert code == 1, out[-2000:]
    expect_outcome(report, dict.fromkeys(clause_ids, CAUSES[mode]))
    for failed in (c for c in report["clauses"] if c["id"] in clause_ids):
        assert "budget" not in failed["detail"], failed  # the component's own answer failed it, not the budget
        assert failed["duration_s"] <= failed["budget_s"], failed
        print(f"{component} {mode}: {failed['id']} failed in {failed['duration_s']} s (budget {failed['budget_s']} s)")
