"""Kubeflow Pipelines behind the gateway: API and UI, uploading the Iris pipeline, a run of it, and its lineage in
MLflow."""

from __future__ import annotations

import tempfile
from pathlib import Path

from metro_e2e.conformance.checks._common import fail_from, get, registers
from metro_e2e.conformance.context import ClauseFailed, KfpPipeline, KfpRun, RunContext
from metro_e2e.errors import MetroE2EError


def _kfp(ctx: RunContext):
    from metro_e2e.kfp import Kfp

    return Kfp.from_config(ctx.config)


@registers("KFP-1")
def check_kfp_1(ctx: RunContext) -> str:
    try:
        health = _kfp(ctx).healthz()
    except MetroE2EError as exc:
        raise fail_from(exc, f"HTTP 200 JSON from {ctx.config.kfp_url}/apis/v2beta1/healthz") from None
    ctx.shared.kfp_backend = health.get("commit_sha") or health.get("version") or ctx.shared.kfp_backend
    ui = get(ctx, ctx.config.kfp_url + "/")
    if ui.status_code != 200 or "<html" not in ui.text.lower():
        raise ClauseFailed("the KFP UI's HTML", f"HTTP {ui.status_code}", url=ui.url, body=ui.text)
    return f"healthz {health}; UI loads at {ctx.config.kfp_url}/"


@registers("KFP-2", imports=("metro_e2e.pipeline.definition",))
def check_kfp_2(ctx: RunContext) -> str:
    from metro_e2e.pipeline import compile_pipeline

    package = compile_pipeline(
        Path(tempfile.mkdtemp(prefix="metro-e2e-kfp-")) / "iris_pipeline.yaml",
        image=ctx.options.step_image,
        kfp_backend=ctx.options.kfp_backend,
    )
    ctx.created.pipelines.append(ctx.name)
    try:
        pipeline_id, version_id = _kfp(ctx).upload(str(package), ctx.name)
    except MetroE2EError as exc:
        raise fail_from(exc, "the compiled pipeline to upload") from None
    ctx.shared.kfp_pipeline = KfpPipeline(pipeline_id, version_id)
    return (
        f"uploaded {ctx.name} as pipeline {pipeline_id} (version {version_id}, step image {ctx.options.step_image}, "
        f"compiled for KFP {ctx.options.kfp_backend})"
    )


@registers("KFP-3")
def check_kfp_3(ctx: RunContext) -> str:
    pipeline_id, version_id = ctx.shared.kfp_pipeline.pipeline_id, ctx.shared.kfp_pipeline.version_id
    from metro_e2e import data

    name = ctx.name + "-kfp"
    data_key = ctx.namespace + "kfp/iris.csv"
    ctx.created.s3.append((ctx.config.data_bucket, ctx.namespace))
    ctx.created.models.append(name)
    ctx.created.experiments.append(name)  # the pipeline's training step creates it in MLflow
    ctx.created.kfp_experiments.append(name)
    inside = ctx.config.in_cluster_url
    params = {
        "s3_endpoint": inside,
        "tracking_uri": inside + "/mlflow",
        "data_key": data_key,
        "experiment": name,
        "model_name": name,
        "promote": False,
    }
    kfp = _kfp(ctx)
    try:
        data.upload_dataset(ctx.storage, data.iris_frame(), bucket=ctx.config.data_bucket, key=data_key)
        experiment_id, run_id = kfp.start(
            pipeline_id=pipeline_id, version_id=version_id, run_name=name, experiment=name, params=params
        )
        outcome = kfp.wait(run_id, timeout_s=ctx.options.kfp_run_timeout_s)
    except MetroE2EError as exc:
        raise fail_from(exc, "a run of the Iris pipeline") from None
    if outcome.state != "SUCCEEDED":
        raise ClauseFailed(f"SUCCEEDED within {ctx.options.kfp_run_timeout_s:.0f} s", outcome.describe())
    ctx.shared.kfp_run = KfpRun(run_id, name)
    return outcome.describe()


@registers("KFP-4", imports=("metro_e2e.registry", "metro_e2e.training"))
def check_kfp_4(ctx: RunContext) -> str:
    from metro_e2e import registry
    from metro_e2e.training import LINEAGE_TAG

    run_id, name = ctx.shared.kfp_run.run_id, ctx.shared.kfp_run.name
    client = registry.make_client(ctx.config)
    try:
        with registry.tracking_errors(ctx.config, "look up the pipeline's MLflow run"):
            exp = client.get_experiment_by_name(name)
            runs = client.search_runs([exp.experiment_id]) if exp else []
            versions = client.search_model_versions(registry.name_filter(name))
    except MetroE2EError as exc:
        raise fail_from(exc, "the pipeline's run and version in MLflow") from None
    tagged = [r for r in runs if r.data.tags.get(LINEAGE_TAG) == run_id]
    if len(runs) != 1 or len(tagged) != 1 or len(versions) != 1:
        raise ClauseFailed(
            f"one MLflow run tagged {LINEAGE_TAG}={run_id} and one new version of {name}",
            f"{len(runs)} run(s), {len(tagged)} tagged, {len(versions)} version(s)",
        )
    return f"MLflow run {tagged[0].info.run_id} tagged with KFP run {run_id}; {name} v{versions[0].version}"
