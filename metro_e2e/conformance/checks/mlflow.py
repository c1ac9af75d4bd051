"""MLflow behind the gateway: the REST API, the UI, the client/server pair, artifact locations, logging and
registering a model."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

from metro_e2e.conformance.checks._common import fail_from, get, registers
from metro_e2e.conformance.context import ClauseFailed, RunContext, Version
from metro_e2e.errors import MetroE2EError


@registers("MLF-1")
def check_mlf_1(ctx: RunContext) -> str:
    url = ctx.config.tracking_uri + "/api/2.0/mlflow/experiments/search?max_results=1"
    response = get(ctx, url)
    if response.status_code != 200:
        hint = {
            403: " (an MLflow 3 server without --allowed-hosts answers 403)",
            502: " (the gateway cannot reach the MLflow service behind it)",
            503: " (the gateway cannot reach the MLflow service behind it)",
            504: " (the MLflow service behind the gateway did not answer in time)",
        }.get(response.status_code, "")
        raise ClauseFailed(
            "HTTP 200 from experiments search", f"HTTP {response.status_code}{hint}", url=url, body=response.text
        )
    if "html" in response.headers.get("Content-Type", "") or response.text.lstrip().startswith("<"):
        raise ClauseFailed(
            "a JSON list of experiments",
            "an HTML page: the /mlflow route reaches a web page or a login screen, not the MLflow API "
            "(fix the gateway's /mlflow route, or METRO_TRACKING_URI)",
            url=url,
            body=response.text,
        )
    try:
        response.json()["experiments"]
    except (ValueError, KeyError):
        raise ClauseFailed("a JSON list of experiments", "something else", url=url, body=response.text) from None
    return f"experiments search -> 200 through {ctx.config.tracking_uri}"


ASSET_TYPES = {".js": ("javascript",), ".css": ("text/css",)}  # what a browser runs or applies, by extension


@registers("MLF-2")
def check_mlf_2(ctx: RunContext) -> str:
    url = ctx.config.tracking_uri + "/"
    page = get(ctx, url)
    if page.status_code != 200 or "<html" not in page.text.lower():
        raise ClauseFailed("the MLflow UI's HTML", f"HTTP {page.status_code}", url=url, body=page.text)
    assets = list(dict.fromkeys(re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)))
    if not assets:
        raise ClauseFailed("the UI to reference its scripts and styles", "no assets referenced", url=url)
    broken = []
    for asset in assets[:5]:
        r = get(ctx, urljoin(url, asset))
        content_type = r.headers.get("Content-Type", "no content type").split(";")[0].strip()
        wanted = ASSET_TYPES[Path(asset).suffix]
        if r.status_code != 200:
            broken.append(f"{asset} -> HTTP {r.status_code}")
        elif not any(w in content_type for w in wanted) or r.text.lstrip()[:1] == "<":
            # an ingress that answers the UI's index.html for every path gives 200 here, and no browser runs it
            broken.append(
                f"{asset} -> HTTP 200 {content_type}, not a {'script' if wanted[0] == 'javascript' else 'stylesheet'}"
            )
    if broken:
        raise ClauseFailed("every referenced script and stylesheet to load as one", "; ".join(broken), url=url)
    return f"UI HTML and {min(len(assets), 5)} referenced script(s)/stylesheet(s) load with their content types"


def server_version(ctx: RunContext) -> str:
    url = ctx.config.tracking_uri + "/version"
    response = get(ctx, url)
    if response.status_code != 200 or not re.match(r"^\d+\.\d+", response.text.strip()):
        raise ClauseFailed(
            "the server version from /version", f"HTTP {response.status_code}", url=url, body=response.text
        )
    return response.text.strip()


@registers("MLF-3", imports=("metro_e2e.registry",))
def check_mlf_3(ctx: RunContext) -> str:
    from metro_e2e import registry

    server = server_version(ctx)
    client = registry.client_version()
    ctx.shared.mlflow_server = server
    if not registry.compatible(client, server):
        raise ClauseFailed(
            "a tested MLflow client/server pair",
            f"client {client} with server {server} (a 3.x client cannot log models to a 2.x server)",
        )
    return f"server {server}, client {client}: a tested pair"


@registers("MLF-4", imports=("metro_e2e.registry",))
def check_mlf_4(ctx: RunContext) -> str:
    from metro_e2e import registry

    client = registry.make_client(ctx.config)
    name = ctx.name + "-location"
    ctx.created.experiments.append(name)  # recorded by name before it exists: cleanup finds it whatever happens
    try:
        with registry.tracking_errors(ctx.config, "create an experiment"):
            exp_id = client.create_experiment(name)
            location = client.get_experiment(exp_id).artifact_location
    except MetroE2EError as exc:
        raise fail_from(exc, "an experiment to be created") from None
    if not location.startswith(f"s3://{ctx.config.models_bucket}/"):
        raise ClauseFailed(f"an artifact location under s3://{ctx.config.models_bucket}/", location)
    return f"new experiment's artifact location is {location}"


@registers("MLF-5", imports=("metro_e2e.registry", "metro_e2e.training", "sklearn.model_selection"))
def check_mlf_5(ctx: RunContext) -> str:
    from metro_e2e import data, registry, training

    config = ctx.config.replace(
        experiment=ctx.name, model_name=ctx.name, artifact_root=f"s3://{ctx.config.models_bucket}/{ctx.namespace}mlflow"
    )
    ctx.created.models.append(ctx.name)
    ctx.created.experiments.append(ctx.name)
    ctx.created.s3.append((ctx.config.models_bucket, ctx.namespace))
    try:
        before = _version_count(config)
        result = training.train(config, data.split(data.iris_frame()), lineage=ctx.run_id)
        after = _version_count(config)
        where = registry.locate_version(config, config.model_name, result.version)
    except MetroE2EError as exc:
        raise fail_from(exc, "a run to log a model and register a version") from None
    if after - before != 1:
        raise ClauseFailed(
            "exactly one new registered version",
            f"{after - before} (the registry lists {before} version(s) before registering and {after} after)",
        )
    if where.bucket != ctx.config.models_bucket:
        raise ClauseFailed(
            f"the model's files in {ctx.config.models_bucket}", f"the registry says they are at {where.source_uri}"
        )
    try:
        files = ctx.storage.list_keys(where.bucket, where.prefix)
    except MetroE2EError as exc:
        raise fail_from(exc, f"the model's files at {where.source_uri}") from None
    if not any(k.endswith("/MLmodel") for k in files):
        raise ClauseFailed(
            f"the model's files in {ctx.config.models_bucket}",
            f"{len(files)} file(s), no MLmodel, at {where.source_uri}",
        )
    ctx.shared.trained = Version(config, result, where)
    return f"run {result.run_id}: accuracy {result.accuracy:.3f}, {config.model_name} v{result.version}, {len(files)} files in {where.source_uri}"


def _version_count(config) -> int:
    from metro_e2e import registry

    client = registry.make_client(config)
    with registry.tracking_errors(config, "count versions"):
        return len(client.search_model_versions(registry.name_filter(config.model_name)))
