"""The Iris workflow as a Kubeflow Pipelines v2 pipeline of container components.

``definition`` builds the pipeline (one configurable step image),
``spec`` checks a compiled YAML against the step CLIs it calls, and
``local`` runs a compiled YAML without Kubernetes or Docker. The kfp SDK is
imported only when one of them is used, so ``metro-e2e`` starts fast.
"""

from metro_e2e import __version__

PIPELINE_NAME = "metro-e2e-iris"
IMAGE_NAME = "metro-e2e-step"  # the step image (the Dockerfile); it carries the whole suite
DEFAULT_IMAGE = f"{IMAGE_NAME}:{__version__}"

__all__ = ["DEFAULT_IMAGE", "IMAGE_NAME", "PIPELINE_NAME", "build_pipeline", "compile_pipeline"]


def __getattr__(name: str):
    if name in ("build_pipeline", "compile_pipeline"):
        from metro_e2e.pipeline import definition

        return getattr(definition, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
