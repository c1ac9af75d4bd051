"""The Iris workflow as a Kubeflow Pipelines v2 pipeline of container components.

``definition`` builds the pipeline (one configurable step image),
``spec`` checks a compiled YAML against the step CLIs it calls, and
``local`` runs a compiled YAML without Kubernetes or Docker.
"""

from metro_e2e.pipeline.definition import DEFAULT_IMAGE, PIPELINE_NAME, build_pipeline, compile_pipeline

__all__ = ["DEFAULT_IMAGE", "PIPELINE_NAME", "build_pipeline", "compile_pipeline"]
