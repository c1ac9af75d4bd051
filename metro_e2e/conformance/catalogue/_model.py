"""The catalogue's vocabulary: clauses, their budgets and needs, breakages and where their proofs live."""

from __future__ import annotations

from dataclasses import dataclass

CORE, ADVISORY = "core", "advisory"
READ, WRITE, PROMOTE = "read", "write", "promote"


@dataclass(frozen=True)
class Budget:
    """A clause's time budget: ``seconds`` of work plus ``requests`` requests that may each wait out the connect
    and read timeouts (the client's retries included), plus the wait that ``option`` names, if any."""

    seconds: float
    requests: int = 1
    option: str | None = None  # an Options field the user sets: KFP-3's run timeout, SRV-5's restart wait

    def describe(self) -> str:
        from metro_e2e.conformance.options import wait_name

        text = f"{self.seconds:g} s + {self.requests} × (connect + read timeout)"
        return text + (f" + {wait_name(self.option)}" if self.option else "")


@dataclass(frozen=True)
class Need:
    """What a clause needs from the run's options before it can run: the ``option`` (an ``Options`` field) must be
    set; ``why`` says what for (the skip reason adds the option that enables it)."""

    option: str
    why: str


STEP_IMAGE = Need("step_image", "runs the pipeline in a step image")
RESTART = Need("restart_serving", "needs a serving restart")


@dataclass(frozen=True)
class Clause:
    id: str
    level: str
    mode: str
    depends_on: tuple[str, ...]
    promise: str
    budget: Budget
    slug: str  # its test is test_<id>_<slug> (the JUnit test case's name)
    quick: bool = False  # part of --quick: is the install alive
    needs: Need | None = None
    breakages: tuple[Breakage, ...] = ()  # the realistic ways a platform breaks the promise, and their proofs
    changed_in: str = "0.1.0"  # the suite version that introduced the clause or last changed what it checks

    @property
    def component(self) -> str:
        """The prefix that ``--skip`` accepts for the whole component (``KFP``, ``SRV``...)."""
        return self.id.split("-", 1)[0]

    @property
    def test_name(self) -> str:
        return f"test_{self.id.lower().replace('-', '_')}_{self.slug}"


def declare(id_: str, level: str, mode: str, deps: str, promise: str, budget: Budget, **more) -> Clause:
    """A clause; ``deps`` lists the ids it depends on, comma-separated."""
    return Clause(id_, level, mode, tuple(d.strip() for d in deps.split(",") if d.strip()), promise, budget, **more)


@dataclass(frozen=True)
class Breakage:
    """A realistic way a platform breaks a clause's promise, and the tests that show the clause failing on it
    (pytest node ids from the repository root; a unit test checks that each exists)."""

    kind: str  # no answer, wrong status, wrong content, wrong object, partial state, missing permission, ...
    what: str
    tests: tuple[str, ...]


def breakage(kind: str, what: str, *tests: str) -> Breakage:
    return Breakage(kind, what, tests)


# where the proofs live
BAD_INPUT = "tests/integration/test_bad_input.py::test_bad_input_is_one_sentence_with_its_exit_code"
GW_S3 = "tests/integration/test_breakages_gateway_s3.py::"
MLF_KFP = "tests/integration/test_breakages_mlflow_kfp.py::"
SRV = "tests/integration/test_breakages_serving.py::"
KFP = "tests/integration/test_check_kfp.py::"
BUDGET = "tests/integration/test_budgets.py::test_a_failing_component_fails_its_clause_within_the_budget"
FAULT = (
    "tests/integration/test_faults_mid_run.py::test_fault_mid_run_fails_the_component_first_and_blocks_its_dependents"
)
UNIT = "tests/unit/test_checks.py::"


def stops_answering(component: str) -> tuple[Breakage, ...]:
    """The three ways a component stops answering, each failing its clause within the clause's budget."""
    return (
        breakage("wrong status", f"{component} answers 500 to every request", f"{BUDGET}[{component}-5xx]"),
        breakage("timeout", f"{component} accepts connections and never answers", f"{BUDGET}[{component}-hang]"),
        breakage(
            "no answer", f"{component} refuses connections (the gateway answers 502)", f"{BUDGET}[{component}-refused]"
        ),
    )
