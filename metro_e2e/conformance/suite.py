"""The live tier: one test per CONTRACT.md clause, generated from the catalogue; each claims its clause with
``@pytest.mark.clause`` and is named ``test_<id>_<slug>`` (the JUnit test case's name).

Shipped inside the package so ``metro-e2e check`` runs it from any install
(``pytest --pyargs metro_e2e.conformance.suite``); ``tests/live`` imports it.
The work is in ``checks/``; verdicts, order and blocking in ``session.py`` and ``hooks.py``.
"""

import pytest

from metro_e2e.conformance.catalogue import CLAUSES

# Dependencies need one process and catalogue order: all clause tests live in this one module, and the
# project runs pytest-xdist with --dist loadfile, which keeps a module on one worker.


def _clause_test(clause_id: str, name: str):
    def test(metro_run):
        metro_run.check(clause_id)

    test.__name__ = test.__qualname__ = name
    test.__doc__ = f"Clause {clause_id}."
    return pytest.mark.clause(clause_id)(test)


for _clause in CLAUSES:
    globals()[_clause.test_name] = _clause_test(_clause.id, _clause.test_name)

TEST_OF = {c.id: c.test_name for c in CLAUSES}  # clause id -> its test (for reports of clauses pytest never reached)
