"""The Iris workflow as command-line steps, one module each, for Kubeflow container components.

``python -m metro_e2e.steps.upload_data|load_data|train|promote``. Each module
has ``build_parser()``, a pure ``run(config, ...)`` and ``main(argv=None) -> int``.
Endpoints default to the in-cluster gateway; credentials come only from the
environment (``METRO_S3_ACCESS_KEY`` / ``METRO_S3_SECRET_KEY``), never from
arguments, so they do not show in pipeline specs or process lists.
"""
