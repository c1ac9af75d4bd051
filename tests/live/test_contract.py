"""The live tier: every CONTRACT.md clause against ``--metro-url`` / ``METRO_URL`` (see metro_e2e.conformance.suite)."""

from metro_e2e.conformance.suite import *  # noqa: F403 - the clause tests, collected here
