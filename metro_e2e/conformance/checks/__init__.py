"""The checks, one module per component; each registers its clauses' checks with ``@registers("<id>")``.

A check returns a one-line detail on success and raises ``ClauseFailed``
(what was expected, what came back, the URL, a body excerpt) when the
platform breaks the promise. A 404, 503 or timeout is never a pass.
Checks hand results to later checks through ``ctx.shared`` (e.g. MLF-5's
trained version for PRM-2); the engine runs them in catalogue order and
blocks dependents of a failed clause.
"""

from metro_e2e.conformance.checks import gateway, kfp, mlflow, promotion, s3, serving  # noqa: F401 - they register
from metro_e2e.conformance.checks._common import CHECKS

__all__ = ["CHECKS"]
