"""The kfp v2 DSL of the Iris pipeline: load_data -> train_model -> (if promote) promote_model.

Every component runs ``python -m metro_e2e.steps.<step>`` in one step image.
Endpoints and names are pipeline parameters so a run can be namespaced;
S3 credentials reach the steps as environment variables from the Kubernetes
secret ``mlpipeline-minio-artifact`` (keys ``accesskey`` / ``secretkey``),
never as parameters.
"""

import os
import tempfile
from pathlib import Path

from google.protobuf import json_format
from kfp import dsl, kubernetes
from kfp.compiler import pipeline_spec_builder
from kfp.pipeline_spec import pipeline_spec_pb2

from metro_e2e.config import (
    CREDENTIALS_SECRET,
    DATA_BUCKET,
    DATA_KEY,
    EXPERIMENT,
    IN_CLUSTER_URL,
    MLFLOW_PATH,
    MODEL_NAME,
    MODELS_BUCKET,
    SECRET_TO_ENV,
)
from metro_e2e.data import SPLIT_NAMES
from metro_e2e.errors import PipelineError
from metro_e2e.pipeline import DEFAULT_IMAGE, PIPELINE_NAME, backend

STEP_COMMAND = ("python", "-m")


def build_pipeline(image: str = DEFAULT_IMAGE, kfp_backend: str = backend.DEFAULT_BACKEND):
    """The pipeline function, with every component running in ``image``, for KFP backend ``kfp_backend``.

    The training run is tagged with the KFP run id: from ``dsl.PIPELINE_JOB_ID_PLACEHOLDER`` where the
    backend's driver resolves it, otherwise (2.4.0 passes it through as text) from the URI of the training
    step's own output, which that backend writes under the run id (the step is never cached, so the URI is
    always this run's; an input's URI would be an earlier run's after a cache hit).
    """
    job_placeholder = backend.resolves(kfp_backend, dsl.PIPELINE_JOB_ID_PLACEHOLDER)

    def command(step: str) -> list[str]:
        return [*STEP_COMMAND, f"metro_e2e.steps.{step}"]

    @dsl.container_component
    def load_data(
        s3_endpoint: str,
        data_bucket: str,
        data_key: str,
        seed: int,
        output_dataset_train_X: dsl.Output[dsl.Dataset],
        output_dataset_test_X: dsl.Output[dsl.Dataset],
        output_dataset_train_y: dsl.Output[dsl.Dataset],
        output_dataset_test_y: dsl.Output[dsl.Dataset],
    ):
        return dsl.ContainerSpec(
            image=image,
            command=command("load_data"),
            args=[
                "--output_dataset_train_X", output_dataset_train_X.path,
                "--output_dataset_test_X", output_dataset_test_X.path,
                "--output_dataset_train_y", output_dataset_train_y.path,
                "--output_dataset_test_y", output_dataset_test_y.path,
                "--s3_endpoint", s3_endpoint,
                "--data_bucket", data_bucket,
                "--data_key", data_key,
                "--seed", seed,
            ],
        )  # fmt: skip

    def train_args(
        train_X, test_X, train_y, test_y, s3_endpoint, tracking_uri, experiment, model_name, version, result
    ):
        return [
            "--dataset_train_X", train_X.path,
            "--dataset_test_X", test_X.path,
            "--dataset_train_y", train_y.path,
            "--dataset_test_y", test_y.path,
            "--s3_endpoint", s3_endpoint,
            "--tracking_uri", tracking_uri,
            "--experiment", experiment,
            "--model_name", model_name,
            "--output_version", version,
            "--output_result", result.path,
        ]  # fmt: skip

    if job_placeholder:

        @dsl.container_component
        def train_model(
            s3_endpoint: str,
            tracking_uri: str,
            experiment: str,
            model_name: str,
            lineage_tag: str,
            dataset_train_X: dsl.Input[dsl.Dataset],
            dataset_test_X: dsl.Input[dsl.Dataset],
            dataset_train_y: dsl.Input[dsl.Dataset],
            dataset_test_y: dsl.Input[dsl.Dataset],
            version: dsl.OutputPath(str),
            result: dsl.Output[dsl.Artifact],
        ):
            return dsl.ContainerSpec(
                image=image,
                command=command("train"),
                args=[
                    *train_args(dataset_train_X, dataset_test_X, dataset_train_y, dataset_test_y,
                                s3_endpoint, tracking_uri, experiment, model_name, version, result),
                    "--lineage_tag", lineage_tag,
                ],
            )  # fmt: skip

        lineage = {"lineage_tag": dsl.PIPELINE_JOB_ID_PLACEHOLDER}
    else:

        @dsl.container_component
        def train_model(
            s3_endpoint: str,
            tracking_uri: str,
            experiment: str,
            model_name: str,
            dataset_train_X: dsl.Input[dsl.Dataset],
            dataset_test_X: dsl.Input[dsl.Dataset],
            dataset_train_y: dsl.Input[dsl.Dataset],
            dataset_test_y: dsl.Input[dsl.Dataset],
            version: dsl.OutputPath(str),
            result: dsl.Output[dsl.Artifact],
        ):
            return dsl.ContainerSpec(
                image=image,
                command=command("train"),
                args=[
                    *train_args(dataset_train_X, dataset_test_X, dataset_train_y, dataset_test_y,
                                s3_endpoint, tracking_uri, experiment, model_name, version, result),
                    "--lineage_from_uri", result.uri,
                ],
            )  # fmt: skip

        lineage = {}

    @dsl.container_component
    def promote_model(s3_endpoint: str, tracking_uri: str, model_name: str, models_bucket: str, version: str):
        return dsl.ContainerSpec(
            image=image,
            command=command("promote"),
            args=[
                "--s3_endpoint", s3_endpoint,
                "--tracking_uri", tracking_uri,
                "--model_name", model_name,
                "--models_bucket", models_bucket,
                "--version", version,
            ],
        )  # fmt: skip

    def with_credentials(task):
        return kubernetes.use_secret_as_env(task, secret_name=CREDENTIALS_SECRET, secret_key_to_env=SECRET_TO_ENV)

    @dsl.pipeline(name=PIPELINE_NAME, description="metro-e2e: the Metro Iris workflow (load, train, promote)")
    def iris_pipeline(
        s3_endpoint: str = IN_CLUSTER_URL,
        tracking_uri: str = IN_CLUSTER_URL + MLFLOW_PATH,
        data_bucket: str = DATA_BUCKET,
        data_key: str = DATA_KEY,
        models_bucket: str = MODELS_BUCKET,
        experiment: str = EXPERIMENT,
        model_name: str = MODEL_NAME,
        seed: int = 42,
        promote: bool = False,
    ):
        load = with_credentials(
            load_data(s3_endpoint=s3_endpoint, data_bucket=data_bucket, data_key=data_key, seed=seed)
        )
        datasets = {f"dataset_{n}": load.outputs[f"output_dataset_{n}"] for n in SPLIT_NAMES}
        endpoints = dict(s3_endpoint=s3_endpoint, tracking_uri=tracking_uri, experiment=experiment)
        train = with_credentials(train_model(**endpoints, model_name=model_name, **lineage, **datasets))
        train.set_caching_options(False)
        with dsl.If(promote == True, name="promote-requested"):  # noqa: E712 - kfp builds a condition from ==
            step = with_credentials(
                promote_model(
                    s3_endpoint=s3_endpoint,
                    tracking_uri=tracking_uri,
                    model_name=model_name,
                    models_bucket=models_bucket,
                    version=train.outputs["version"],
                )
            )
            step.set_caching_options(False)

    return iris_pipeline


def compile_pipeline(
    output: "str | os.PathLike", *, image: str = DEFAULT_IMAGE, kfp_backend: str = backend.DEFAULT_BACKEND
) -> Path:
    """Compile the pipeline for KFP backend ``kfp_backend`` to ``output`` (deterministic: same inputs, same bytes).

    The kfp SDK's own compiler writes the file; for a declared backend the platform spec first loses what
    ``backend.for_backend`` removes, and the result must pass ``backend.check`` (else ``PipelineError``).
    """
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=out.parent, delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        pipeline = build_pipeline(image, kfp_backend)
        platform = backend.for_backend(json_format.MessageToDict(pipeline.platform_spec), kfp_backend)
        pipeline_spec_builder.write_pipeline_spec_to_file(
            pipeline_spec=pipeline.pipeline_spec,
            pipeline_description=pipeline.description,
            platform_spec=json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec()),
            package_path=str(tmp_path),
        )
        if kfp_backend != backend.SDK:
            problems = backend.check(tmp_path.read_text(), kfp_backend)
            if problems:
                raise PipelineError(
                    f"the pipeline compiled for KFP {kfp_backend} is not one that backend reads: " + "; ".join(problems)
                )
        os.replace(tmp_path, out)
    finally:
        tmp_path.unlink(missing_ok=True)
    return out
