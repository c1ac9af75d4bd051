"""The Iris workflow as a Kubeflow Pipelines v2 pipeline of container components.

``definition`` builds the pipeline (one configurable step image),
``spec`` checks a compiled YAML against the step CLIs it calls, and
``local`` runs a compiled YAML without Kubernetes or Docker. The kfp SDK is
imported only when one of them is used, so ``metro-e2e`` starts fast.
"""

from metro_e2e import __version__

PIPELINE_NAME = "metro-e2e-iris"
DEFAULT_IMAGE = f"metro-e2e-step:{__version__}"

__all__ = ["DEFAULT_IMAGE", "PIPELINE_NAME", "build_pipeline", "compile_pipeline"]


def __getattr__(name: str):
    if name in ("build_pipeline", "compile_pipeline"):
        from metro_e2e.pipeline import definition

        return getattr(definition, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
