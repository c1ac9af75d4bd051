"""Live layer: the CONTRACT.md clauses against a gateway URL (``--metro-url`` / ``METRO_URL``).

The clause tests arrive with the conformance engine; the ``metro_config``
fixture of the plugin already resolves the target.
"""
