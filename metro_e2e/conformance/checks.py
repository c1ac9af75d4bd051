"""One function per clause of CONTRACT.md: ``check_<id>(ctx) -> detail``.

A check returns a one-line detail on success and raises ``ClauseFailed``
(what was expected, what came back, the URL, a body excerpt) when the
platform breaks the promise. A 404, 503 or timeout is never a pass.
Checks share results through ``ctx.results`` (e.g. MLF-5's trained version
for PRM-2); the engine runs them in catalogue order and blocks dependents of
a failed clause.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests
from boto3.s3.transfer import TransferConfig

from metro_e2e import data, promotion, registry, serving, training
from metro_e2e._http import why_no_answer
from metro_e2e.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from metro_e2e.conformance.context import NAMESPACE_ROOT, ClauseFailed, RunContext, Undecided
from metro_e2e.errors import MetroE2EError
from metro_e2e.storage import Storage

log = logging.getLogger(__name__)
MULTIPART_BYTES = 8 * 1024 * 1024 + 17
IRIS_COLUMNS = list(data.FEATURES)


def _get(ctx: RunContext, clause: str, url: str, **kwargs) -> requests.Response:
    try:
        response = requests.get(url, timeout=ctx.timeout, allow_redirects=False, **kwargs)
    except requests.RequestException as exc:
        connect, read = ctx.timeout
        why = why_no_answer(exc, url, connect_timeout=connect, read_timeout=read)
        raise ClauseFailed("an HTTP answer", why, url=url) from None
    ctx.evidence(clause, f"GET {url}", response)
    return response


def _storage(ctx: RunContext) -> Storage:
    return ctx.storage


def _fail_from(exc: MetroE2EError, expected: str) -> ClauseFailed:
    return ClauseFailed(expected, str(exc))


# -- gateway ----------------------------------------------------------------------------------------------------------
def check_gw_1(ctx: RunContext) -> str:
    url = ctx.config.url + "/"
    try:
        response = requests.get(url, timeout=ctx.timeout, allow_redirects=False)
    except requests.RequestException as exc:
        connect, read = ctx.timeout
        why = why_no_answer(exc, url, connect_timeout=connect, read_timeout=read)
        hint = "check --url / METRO_URL and that the gateway is reachable from here"
        if isinstance(exc, requests.exceptions.SSLError):
            hint = "if the gateway speaks plain HTTP, use http:// in --url / METRO_URL"
        raise ClauseFailed(
            "an HTTP answer from the gateway",
            f"none: {ctx.config.mask(url)} [{ctx.config.source_of('url')}]: {why}",
            hint=hint,
        ) from None
    ctx.evidence("GW-1", f"GET {url}", response)
    if response.status_code >= 500:  # any server error: the gateway, or what sits at its root, is broken
        raise ClauseFailed(
            "the gateway to answer without a server error",
            f"HTTP {response.status_code} {response.reason or ''}".rstrip(),
            url=response.url,
            body=response.text,
        )
    return f"HTTP {response.status_code} from {ctx.config.url}/ in {response.elapsed.total_seconds() * 1000:.0f} ms"


# -- S3 -----------------------------------------------------------------------------------------------------------------
def check_s3_1(ctx: RunContext) -> str:
    try:
        buckets = _storage(ctx).list_buckets()
    except MetroE2EError as exc:
        raise _fail_from(exc, "a signed ListBuckets with the configured credentials to succeed") from None
    return f"ListBuckets at {ctx.config.s3_endpoint} returned {len(buckets)} bucket(s)"


def check_s3_2(ctx: RunContext) -> str:
    storage = _storage(ctx)
    missing = [b for b in (ctx.config.models_bucket, ctx.config.data_bucket) if not storage.bucket_exists(b)]
    if missing:
        raise ClauseFailed(
            f"buckets {ctx.config.models_bucket} and {ctx.config.data_bucket}",
            f"missing: {', '.join(missing)}",
            url=ctx.config.s3_endpoint,
        )
    return f"{ctx.config.models_bucket} and {ctx.config.data_bucket} exist"


def check_s3_3(ctx: RunContext) -> str:
    storage = _storage(ctx)
    bucket, small_key, big_key = (
        ctx.config.data_bucket,
        ctx.namespace + "s3-3/small.bin",
        ctx.namespace + "s3-3/big.bin",
    )
    ctx.created["s3"].append((bucket, ctx.namespace))
    small = b"metro-e2e " + ctx.run_id.encode()
    big = hashlib.sha256(small).digest() * (MULTIPART_BYTES // 32 + 1)
    try:
        storage.put_bytes(bucket, small_key, small)
        with storage.errors("multipart upload", bucket=bucket, key=big_key):
            storage.client.upload_fileobj(
                io.BytesIO(big),
                bucket,
                big_key,
                Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024),
            )
        if storage.get_bytes(bucket, small_key) != small:
            raise ClauseFailed("the single put to read back byte-identical", "different bytes")
        if hashlib.sha256(storage.get_bytes(bucket, big_key)).digest() != hashlib.sha256(big).digest():
            raise ClauseFailed("the multipart upload to read back byte-identical", "different bytes")
        listed = set(storage.list_keys(bucket, ctx.namespace + "s3-3/"))
        if listed != {small_key, big_key}:
            raise ClauseFailed(f"the listing to show {small_key} and {big_key}", f"{sorted(listed)}")
        storage.delete_keys(bucket, [small_key, big_key])
        left = storage.list_keys(bucket, ctx.namespace + "s3-3/")
        if left:
            raise ClauseFailed("deleted objects to disappear from the listing", f"still listed: {left}")
    except MetroE2EError as exc:
        raise _fail_from(exc, "put, multipart upload, read, list and delete to succeed") from None
    return f"put {len(small)} B and multipart {len(big) / 2**20:.1f} MiB under s3://{bucket}/{ctx.namespace}, read back, listed, deleted"


S3_DENIALS = ("AccessDenied", "AllAccessDisabled")  # what S3 (MinIO, AWS) answers an unsigned request it refuses


def check_s3_4(ctx: RunContext) -> str:
    storage, anonymous = ctx.storage, ctx.storage.anonymous()
    allowed, not_denied, probed, absent = [], [], [], []
    for bucket in (ctx.config.models_bucket, ctx.config.data_bucket):
        try:
            if not storage.bucket_exists(bucket):
                absent.append(bucket)  # nothing to protect there; S3-2 fails on it
                continue
            samples = _samples(storage, bucket, ctx.config.latest_prefix)
        except MetroE2EError as exc:
            raise _fail_from(exc, f"a signed listing of {bucket} to find objects to read") from None
        requests_ = [("list", "list_objects_v2", {"Bucket": bucket, "MaxKeys": 1}, bucket)]
        for prefix, key in samples:  # a policy can open one prefix only (latest/ for a credential-less pod)
            if prefix:
                requests_.append(
                    (
                        "list",
                        "list_objects_v2",
                        {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1},
                        f"{bucket}/{prefix}",
                    )
                )
            requests_.append(("read", "get_object", {"Bucket": bucket, "Key": key}, f"{bucket}/{key}"))
        for what, operation, params, label in requests_:
            answer = anonymous.answer(operation, **params)
            label = f"{what} {label}"
            probed.append(label)
            if answer.status < 300:
                allowed.append(f"{label} (HTTP {answer.status})")
            elif answer.code in ("NoSuchKey", "NoSuchBucket"):
                allowed.append(f"{label} (answered {answer.code}: anonymous requests reach the bucket)")
            elif answer.status not in (401, 403) or answer.code not in S3_DENIALS:
                not_denied.append(f"{label}: HTTP {answer.status} {answer.code or '(no S3 error code)'}")
    if allowed:
        raise ClauseFailed(
            "anonymous requests to be refused", "allowed: " + "; ".join(allowed), url=ctx.config.s3_endpoint
        )
    if not_denied:
        raise ClauseFailed(
            f"S3's own denial (401/403 {' or '.join(S3_DENIALS)}) for every anonymous request",
            "not S3's own denial: " + "; ".join(not_denied),
            url=ctx.config.s3_endpoint,
        )
    if not probed:
        raise Undecided(f"neither {' nor '.join(absent)} exists, so no anonymous request could be tried (S3-2)")
    missing = f"; {', '.join(absent)} does not exist (S3-2)" if absent else ""
    return f"S3 denied all {len(probed)} anonymous requests (lists and reads of existing objects){missing}"


MAX_SAMPLED_PREFIXES = 50  # and latest/ always: where a policy for a credential-less serving pod would point


def _samples(storage, bucket: str, latest_prefix: str) -> list[tuple[str, str]]:
    """(prefix, an existing key under it) for the bucket's top level, each of its first top-level prefixes, and
    ``latest/``; a bucket with no object gives a key that does not exist (an open bucket answers NoSuchKey)."""
    top_keys, prefixes = storage.top_level(bucket)
    own = (NAMESPACE_ROOT, promotion.STAGING_ROOT)  # the suite's transient objects: what runs left there varies
    theirs = [p for p in prefixes if p not in own]
    if len(theirs) > MAX_SAMPLED_PREFIXES:
        log.info("S3-4 samples %d of %d top-level prefixes of %s", MAX_SAMPLED_PREFIXES, len(theirs), bucket)
    wanted = list(dict.fromkeys([*theirs[:MAX_SAMPLED_PREFIXES], latest_prefix]))
    samples = [("", top_keys[0])] if top_keys else []
    for prefix in wanted:
        key = storage.first_key(bucket, prefix)
        if key:
            samples.append((prefix, key))
    return samples or [("", NAMESPACE_ROOT + "s3-4/absent")]


def check_s3_5(ctx: RunContext) -> str:
    if (ctx.config.s3_access_key.reveal(), ctx.config.s3_secret_key.reveal()) == (
        DEFAULT_ACCESS_KEY,
        DEFAULT_SECRET_KEY,
    ):
        raise ClauseFailed(
            "credentials other than the published defaults", "the published default credentials are in use"
        )
    return "the credentials in use are not the published defaults"


# -- MLflow -------------------------------------------------------------------------------------------------------------
def check_mlf_1(ctx: RunContext) -> str:
    url = ctx.config.tracking_uri + "/api/2.0/mlflow/experiments/search?max_results=1"
    response = _get(ctx, "MLF-1", url)
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


def check_mlf_2(ctx: RunContext) -> str:
    url = ctx.config.tracking_uri + "/"
    page = _get(ctx, "MLF-2", url)
    if page.status_code != 200 or "<html" not in page.text.lower():
        raise ClauseFailed("the MLflow UI's HTML", f"HTTP {page.status_code}", url=url, body=page.text)
    assets = list(dict.fromkeys(re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)))
    if not assets:
        raise ClauseFailed("the UI to reference its scripts and styles", "no assets referenced", url=url)
    broken = []
    for asset in assets[:5]:
        r = _get(ctx, "MLF-2", urljoin(url, asset))
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
    response = _get(ctx, "MLF-3", url)
    if response.status_code != 200 or not re.match(r"^\d+\.\d+", response.text.strip()):
        raise ClauseFailed(
            "the server version from /version", f"HTTP {response.status_code}", url=url, body=response.text
        )
    return response.text.strip()


def compatible(client: str, server: str) -> bool:
    """The tested pairs: a 2.x client works with 2.x and 3.x servers; a 3.x client needs a 3.x server."""
    c, s = int(client.split(".")[0]), int(server.split(".")[0])
    return (c == 2 and s in (2, 3)) or (c == 3 and s == 3)


def check_mlf_3(ctx: RunContext) -> str:
    server = server_version(ctx)
    client = registry.client_version()
    ctx.versions["mlflow_server"] = server
    if not compatible(client, server):
        raise ClauseFailed(
            "a tested MLflow client/server pair",
            f"client {client} with server {server} (a 3.x client cannot log models to a 2.x server)",
        )
    return f"server {server}, client {client}: a tested pair"


def check_mlf_4(ctx: RunContext) -> str:
    client = registry.make_client(ctx.config)
    name = ctx.name + "-location"
    ctx.created["experiments"].append(name)  # recorded by name before it exists: cleanup finds it whatever happens
    try:
        with registry.tracking_errors(ctx.config, "create an experiment"):
            exp_id = client.create_experiment(name)
            location = client.get_experiment(exp_id).artifact_location
    except MetroE2EError as exc:
        raise _fail_from(exc, "an experiment to be created") from None
    if not location.startswith(f"s3://{ctx.config.models_bucket}/"):
        raise ClauseFailed(f"an artifact location under s3://{ctx.config.models_bucket}/", location)
    return f"new experiment's artifact location is {location}"


def check_mlf_5(ctx: RunContext) -> str:
    config = ctx.config.replace(
        experiment=ctx.name, model_name=ctx.name, artifact_root=f"s3://{ctx.config.models_bucket}/{ctx.namespace}mlflow"
    )
    ctx.created["models"].append(ctx.name)
    ctx.created["experiments"].append(ctx.name)
    ctx.created["s3"].append((ctx.config.models_bucket, ctx.namespace))
    try:
        before = _version_count(config)
        result = training.train(config, data.split(data.iris_frame()), lineage=ctx.run_id)
        after = _version_count(config)
        where = registry.locate_version(config, config.model_name, result.version)
    except MetroE2EError as exc:
        raise _fail_from(exc, "a run to log a model and register a version") from None
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
        raise _fail_from(exc, f"the model's files at {where.source_uri}") from None
    if not any(k.endswith("/MLmodel") for k in files):
        raise ClauseFailed(
            f"the model's files in {ctx.config.models_bucket}",
            f"{len(files)} file(s), no MLmodel, at {where.source_uri}",
        )
    ctx.results["trained"] = (config, result, where)
    return f"run {result.run_id}: accuracy {result.accuracy:.3f}, {config.model_name} v{result.version}, {len(files)} files in {where.source_uri}"


def _version_count(config) -> int:
    client = registry.make_client(config)
    with registry.tracking_errors(config, "count versions"):
        return len(client.search_model_versions(f"name='{config.model_name}'"))


# -- Kubeflow Pipelines ------------------------------------------------------------------------------------------------
def _kfp(ctx: RunContext):
    from metro_e2e.kfp import Kfp

    return Kfp(ctx.config.kfp_url, connect_timeout=ctx.config.connect_timeout, read_timeout=ctx.config.read_timeout)


def check_kfp_1(ctx: RunContext) -> str:
    try:
        health = _kfp(ctx).healthz()
    except MetroE2EError as exc:
        raise _fail_from(exc, f"HTTP 200 JSON from {ctx.config.kfp_url}/apis/v2beta1/healthz") from None
    ctx.versions["kfp_backend"] = health.get("commit_sha") or health.get("version") or ctx.versions.get("kfp_backend")
    ui = _get(ctx, "KFP-1", ctx.config.kfp_url + "/")
    if ui.status_code != 200 or "<html" not in ui.text.lower():
        raise ClauseFailed("the KFP UI's HTML", f"HTTP {ui.status_code}", url=ui.url, body=ui.text)
    return f"healthz {health}; UI loads at {ctx.config.kfp_url}/"


def check_kfp_2(ctx: RunContext) -> str:
    from metro_e2e.pipeline import compile_pipeline

    package = compile_pipeline(
        Path(tempfile.mkdtemp(prefix="metro-e2e-kfp-")) / "iris_pipeline.yaml", image=ctx.options.step_image
    )
    ctx.created["pipelines"].append(ctx.name)
    try:
        pipeline_id, version_id = _kfp(ctx).upload(str(package), ctx.name)
    except MetroE2EError as exc:
        raise _fail_from(exc, "the compiled pipeline to upload") from None
    ctx.results["kfp_pipeline"] = (pipeline_id, version_id)
    return f"uploaded {ctx.name} as pipeline {pipeline_id} (version {version_id}, step image {ctx.options.step_image})"


def check_kfp_3(ctx: RunContext) -> str:
    pipeline_id, version_id = ctx.results["kfp_pipeline"]
    name = ctx.name + "-kfp"
    data_key = ctx.namespace + "kfp/iris.csv"
    ctx.created["s3"].append((ctx.config.data_bucket, ctx.namespace))
    ctx.created["models"].append(name)
    ctx.created["experiments"].append(name)  # the pipeline's training step creates it in MLflow
    ctx.created["kfp_experiments"].append(name)
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
        data.upload_dataset(_storage(ctx), data.iris_frame(), bucket=ctx.config.data_bucket, key=data_key)
        experiment_id, run_id = kfp.start(
            pipeline_id=pipeline_id, version_id=version_id, run_name=name, experiment=name, params=params
        )
        outcome = kfp.wait(run_id, timeout_s=ctx.options.kfp_run_timeout_s)
    except MetroE2EError as exc:
        raise _fail_from(exc, "a run of the Iris pipeline") from None
    if outcome.state != "SUCCEEDED":
        raise ClauseFailed(f"SUCCEEDED within {ctx.options.kfp_run_timeout_s:.0f} s", outcome.describe())
    ctx.results["kfp_run"] = (run_id, name)
    return outcome.describe()


def check_kfp_4(ctx: RunContext) -> str:
    from metro_e2e.training import LINEAGE_TAG

    run_id, name = ctx.results["kfp_run"]
    client = registry.make_client(ctx.config)
    try:
        with registry.tracking_errors(ctx.config, "look up the pipeline's MLflow run"):
            exp = client.get_experiment_by_name(name)
            runs = client.search_runs([exp.experiment_id]) if exp else []
            versions = client.search_model_versions(f"name='{name}'")
    except MetroE2EError as exc:
        raise _fail_from(exc, "the pipeline's run and version in MLflow") from None
    tagged = [r for r in runs if r.data.tags.get(LINEAGE_TAG) == run_id]
    if len(runs) != 1 or len(tagged) != 1 or len(versions) != 1:
        raise ClauseFailed(
            f"one MLflow run tagged {LINEAGE_TAG}={run_id} and one new version of {name}",
            f"{len(runs)} run(s), {len(tagged)} tagged, {len(versions)} version(s)",
        )
    return f"MLflow run {tagged[0].info.run_id} tagged with KFP run {run_id}; {name} v{versions[0].version}"


# -- promotion and latest/ ----------------------------------------------------------------------------------------------
def _load_latest(ctx: RunContext):
    import mlflow.pyfunc

    folder = tempfile.mkdtemp(prefix="metro-e2e-latest-")
    cfg = ctx.config
    promotion.download_latest(_storage(ctx), bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, dest=folder)
    return mlflow.pyfunc.load_model(folder)


_FILE_KEYS = {"pickled_model", "model_path", "data", "conda", "virtualenv", "model_data", "code"}


def mlmodel_references(mlmodel: bytes) -> set[str]:
    """The files an MLmodel file names: flavor payloads, environment files, the saved input example."""
    import yaml

    try:
        spec = yaml.safe_load(mlmodel) or {}
    except yaml.YAMLError as exc:
        raise ClauseFailed("a readable MLmodel file", f"invalid YAML: {str(exc).splitlines()[0]}") from None
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _FILE_KEYS and isinstance(value, str):
                    found.add(value)
                walk(value)

    walk(spec.get("flavors", {}))
    example = spec.get("saved_input_example_info") or {}
    if isinstance(example, dict) and isinstance(example.get("artifact_path"), str):
        found.add(example["artifact_path"])
    return found


def check_prm_1(ctx: RunContext) -> str:
    cfg = ctx.config
    storage = _storage(ctx)
    try:
        keys = storage.list_keys(cfg.models_bucket, cfg.latest_prefix)
        if not keys:
            raise ClauseFailed(f"a model under s3://{cfg.models_bucket}/{cfg.latest_prefix}", "nothing there")
        rel = {k[len(cfg.latest_prefix) :] for k in keys}
        if "MLmodel" not in rel:
            raise ClauseFailed("an MLmodel file in latest/", f"{len(rel)} file(s) without one")
        mlmodel = storage.get_bytes(cfg.models_bucket, cfg.latest_prefix + "MLmodel")
        referenced = mlmodel_references(mlmodel)
        missing = sorted(
            r for r in referenced if r not in rel and not any(x.startswith(r.rstrip("/") + "/") for x in rel)
        )
        if missing:
            raise ClauseFailed("every file MLmodel references", f"missing: {', '.join(missing)}")
        model = _load_latest(ctx)
    except MetroE2EError as exc:
        raise _fail_from(exc, "latest/ to be readable") from None
    except ClauseFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - anything load_model raises means "does not load"
        raise ClauseFailed(
            "mlflow.pyfunc.load_model to load latest/", f"{type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    ctx.results["latest_model"] = model
    marker = promotion.read_marker(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
    holds = f", marker says {marker.get('name')} v{marker.get('version')}" if marker else ", no promotion marker"
    return f"{len(rel)} files, MLmodel and its references present, loads{holds}"


def check_prm_2(ctx: RunContext) -> str:
    config, result, where = ctx.results["trained"]
    cfg = ctx.config
    storage = _storage(ctx)
    moments: list[Moment] = []
    try:
        old = _latest_etags(ctx)
        previous = _back_up_latest(ctx, storage)
        ctx.results["promoting"] = config.model_name  # before: the run puts latest/ back whatever happens next
        done = promotion.promote_location(
            storage, where, config=cfg, observe=lambda step: moments.append(_read_latest(ctx, step))
        )
        new = {rel: etag for rel, etag in _latest_etags(ctx).items() if rel in done.files}
        state = promotion.inspect_latest(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
        source = {k[len(where.prefix) :] for k in storage.list_keys(where.bucket, where.prefix)}
    except MetroE2EError as exc:
        raise _fail_from(exc, f"{config.model_name} v{result.version} to be promoted") from None
    writes = len(done.files) + 1 + (1 if done.removed else 0)  # every copy, the marker, the removal of stale files
    problems = [p for m in moments if (p := _moment_problem(m, old, new))]
    if len(moments) != writes:
        problems.append(f"latest/ could be read at only {len(moments)} of the {writes} moments of the swap")
    if set(state.files) != source:
        extra, missing = sorted(set(state.files) - source), sorted(source - set(state.files))
        problems.append(
            "at the end latest/ holds "
            + "; ".join(
                part
                for part in (
                    f"files the version lacks: {', '.join(extra)}" if extra else "",
                    f"not all of its files, missing: {', '.join(missing)}" if missing else "",
                )
                if part
            )
        )
    marker = state.marker or {}
    if not state.complete or (marker.get("name"), marker.get("version")) != (config.model_name, result.version):
        problems.append(
            f"a marker recording {config.model_name} version {result.version}, not "
            + ("; ".join(state.problems) or f"{marker.get('name')} version {marker.get('version')}")
        )
    if problems:
        raise ClauseFailed(
            f"latest/ replaced by exactly {config.model_name} v{result.version}'s files, never empty and never a mix "
            "a reader would load while that happens, and a marker recording it",
            "; ".join(problems[:4]) + (f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""),
        )
    ctx.results["promoted"] = (config, result)  # what SRV-5 restarts serving for
    flagged = sum(1 for m in moments if m.in_progress and not _whole(m.files, old, new))
    kept = (
        f"; the previous latest/ ({previous[1].get('name')} v{previous[1].get('version')}) is put back when the run ends"
        if previous
        else "; latest/ was empty before, so this model stays"
    )
    return (
        f"latest/ now holds {config.model_name} v{result.version} ({len(done.files)} files, "
        f"{len(done.removed)} stale removed); read at each of the swap's {writes} moments: never empty, one whole "
        f"model at {writes - flagged}, at {flagged} a mix marked as a promotion under way (promotion-aware loaders "
        f"refuse it; a plain download would not){kept}"
    )


@dataclass(frozen=True)
class Moment:
    """``latest/`` right after one write of a promotion: its files' ETags and whether a promotion is under way."""

    step: str
    files: dict[str, str]
    in_progress: bool


def _latest_etags(ctx: RunContext) -> dict[str, str]:
    """relative path -> ETag of every object in ``latest/`` but the marker (one listing, nothing downloaded)."""
    cfg = ctx.config
    marker = cfg.latest_prefix + promotion.MARKER_NAME
    etags = {
        o.key[len(cfg.latest_prefix) :]: o.etag
        for o in ctx.storage.list_objects(cfg.models_bucket, cfg.latest_prefix)
        if o.key != marker
    }
    if any(not etag for etag in etags.values()):  # names alone cannot tell old files from new ones
        raise Undecided(f"S3 lists objects in s3://{cfg.models_bucket}/{cfg.latest_prefix} without ETags")
    return etags


def _read_latest(ctx: RunContext, step: str) -> Moment:
    """What a reader of ``latest/`` finds right after ``step`` (listings and the small marker/journal objects only,
    whatever the model's size)."""
    cfg = ctx.config
    files = _latest_etags(ctx)
    marker = promotion.read_marker(ctx.storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix)
    pending = promotion.pending(ctx.storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, marker=marker)
    return Moment(step, files, bool(pending))


def _whole(files: dict, old: dict, new: dict) -> bool:
    """One model's files are all there with that model's content (files only the other has are unreferenced)."""
    return any(model and all(files.get(rel) == etag for rel, etag in model.items()) for model in (old, new))


def _moment_problem(moment: Moment, old: dict, new: dict) -> str | None:
    """Why ``latest/`` at ``moment`` breaks the promise (empty, or a mix nothing marks as under way), or None."""
    if not moment.files:
        return f"latest/ was empty after {moment.step}"
    if _whole(moment.files, old, new) or moment.in_progress:
        return None  # one whole model, or a mix every reader that follows the promotion protocol refuses
    fresh = sum(1 for rel, etag in moment.files.items() if new.get(rel) == etag)
    return (
        f"after {moment.step} latest/ held {fresh} new and {len(moment.files) - fresh} other file(s) with nothing "
        "marking the promotion as under way: a reader would load the mix"
    )


def _back_up_latest(ctx: RunContext, storage: Storage) -> tuple[str, dict] | None:
    """Copy what ``latest/`` holds into the run's namespace, so the run can put it back at the end."""
    cfg = ctx.config
    marker_key = cfg.latest_prefix + promotion.MARKER_NAME
    keys = [k for k in storage.list_keys(cfg.models_bucket, cfg.latest_prefix) if k != marker_key]
    if not keys:
        return None
    backup = ctx.namespace + "previous-latest/"
    ctx.created["s3"].append((cfg.models_bucket, ctx.namespace))
    for key in keys:
        storage.copy(cfg.models_bucket, key, backup + key[len(cfg.latest_prefix) :])
    marker = promotion.read_marker(storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix) or {}
    record = {
        "name": marker.get("name", "the model served before the check"),
        "version": marker.get("version", "unknown"),
        "source_uri": marker.get("source_uri", f"s3://{cfg.models_bucket}/{cfg.latest_prefix}"),
    }
    ctx.results["previous_latest"] = (backup, record, marker or None)
    return backup, record


# -- serving --------------------------------------------------------------------------------------------------------------
def _client(ctx: RunContext, host: str | None = "default") -> serving.ServingClient:
    c = serving.ServingClient.from_config(ctx.config)
    if host != "default":
        c.host = host
    return c


def _rows(n: int | None = None):
    frame = data.iris_frame().drop(columns=[data.TARGET])
    return frame if n is None else frame.iloc[[0, 50, 100, 1, 149][:n]]


def check_srv_1(ctx: RunContext) -> str:
    client = _client(ctx)
    out = []
    for fmt in ("dataframe_split", "dataframe_records"):
        try:
            answer = client.predict_frame(_rows(5), fmt)
        except MetroE2EError as exc:
            raise _fail_from(exc, f"200 with predictions for a {fmt} request") from None
        bad = [p for p in answer.predictions if p not in (0, 1, 2)]
        if len(answer.predictions) != 5 or bad:
            raise ClauseFailed("5 predictions, each an Iris class 0-2", f"{answer.predictions}", url=client.url)
        out.append(f"{fmt} -> {answer.predictions}")
    return "; ".join(out)


def check_srv_2(ctx: RunContext) -> str:
    payload = serving.dataframe_split(_rows(1))
    no_host = _client(ctx, host=None).post(payload.body, payload.content_type)
    ctx.evidence("SRV-2", "POST without the serving Host header", no_host)
    answer = _json_or_none(no_host)
    if isinstance(answer, dict) and ("predictions" in answer or "error_code" in answer):
        # the scoring server answers predictions, or its own JSON error (a 4xx with error_code): either way the
        # request reached the model without the Host header that should gate it
        raise ClauseFailed(
            f"a request without Host: {ctx.config.serving_host} not to reach the model",
            f"HTTP {no_host.status_code} from the model server ({', '.join(sorted(answer))})",
            url=no_host.url,
            body=no_host.text,
        )
    if no_host.status_code >= 500 or 300 <= no_host.status_code < 400:
        where = f" to {no_host.headers.get('Location')!r}" if no_host.is_redirect else ""
        raise ClauseFailed(
            "the request without the Host header to be answered where it falls through (S3 at the root)",
            f"HTTP {no_host.status_code}{where}: cannot tell where it went",
            url=no_host.url,
            body=no_host.text,
        )
    base = ctx.config.serving_url.rsplit("/invocations", 1)[0]
    redirect = _get(ctx, "SRV-2", base, headers={"Host": ctx.config.serving_host})
    location = redirect.headers.get("Location", "")
    if redirect.status_code not in (301, 302, 307, 308) or not location.endswith("/mlflow-model/"):
        raise ClauseFailed(
            f"{base} to redirect to {base}/",
            f"HTTP {redirect.status_code} Location {location!r}",
            url=base,
            body=redirect.text,
        )
    return f"without the Host header: HTTP {no_host.status_code} (not the model); {base} -> {redirect.status_code} {location}"


def _json_or_none(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def check_srv_3(ctx: RunContext) -> str:
    client = _client(ctx)
    cases = [
        ("malformed JSON", b"{not json", "application/json", 400),
        ("no input key", b"{}", "application/json", 400),
        (
            "two input keys",
            b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "instances": [[1]]}',
            "application/json",
            400,
        ),
        ("wrong columns", b'{"dataframe_records": [{"wrong column": 1.0}]}', "application/json", 400),
        ("unsupported content type", b"a=1", "application/x-www-form-urlencoded", 415),
    ]
    wrong = []
    for name, body, content_type, want in cases:
        r = client.post(body, content_type)
        ctx.evidence("SRV-3", name, r)
        body = _json_or_none(r)
        code = body.get("error_code") if isinstance(body, dict) else None
        if r.status_code != want or (want == 400 and not code):
            wrong.append(f"{name}: HTTP {r.status_code} error_code={code}")
    if wrong:
        raise ClauseFailed(
            "400 with a JSON error_code (415 for the content type), never 5xx", "; ".join(wrong), url=client.url
        )
    return "4 bad bodies -> 400 with error_code, form body -> 415"


def check_srv_4(ctx: RunContext) -> str:
    rows = _rows()
    expected = [int(p) for p in ctx.results["latest_model"].predict(rows).tolist()]
    try:
        served = _client(ctx).predict_frame(rows).predictions
    except MetroE2EError as exc:
        raise _fail_from(exc, "predictions for all 150 rows") from None
    diff = [i for i, (a, b) in enumerate(zip(served, expected, strict=False)) if a != b]
    if len(served) != len(expected) or diff:
        raise ClauseFailed(
            "the served predictions to equal latest/'s model on 150 rows",
            f"{len(diff)} differ (first rows {diff[:5]}); the server may serve a stale model",
        )
    return "150/150 predictions equal the model in latest/"


def _differ(got: list | None, expected: list) -> int:
    """How many predictions differ (a missing or short answer counts every missing row)."""
    got = got or []
    return sum(1 for a, b in zip(got, expected, strict=False) if a != b) + abs(len(expected) - len(got))


DISTINGUISHING_SPLITS = range(1, 21)  # split seeds SRV-5 tries for a version that predicts unlike the served model


def check_srv_5(ctx: RunContext) -> str:
    config, result = ctx.results["promoted"]
    rows = _rows()
    expected = [int(p) for p in _load_latest(ctx).predict(rows).tolist()]
    before = _served_before(ctx, rows)
    # what serving answers now, or (if it does not answer) what it served when SRV-4 passed: latest/ before PRM-2
    reference = before if before is not None else _predictions(ctx.results.get("latest_model"), rows)
    if reference == expected:  # a restart would change nothing visible: promote a version that predicts otherwise
        config, result, expected = _distinguishable_version(ctx, config, result, served=reference)
    ctx.results["serving_restarted"] = True  # set first: the run restarts it again after putting latest/ back
    state = ctx.restart_serving()
    deadline = time.monotonic() + ctx.options.restart_timeout_s
    last = "nothing yet"
    while time.monotonic() < deadline:
        try:
            served = _client(ctx).predict_frame(rows).predictions
            if served == expected:
                changed = (
                    "it answered nothing before" if before is None else f"{_differ(before, expected)} rows changed"
                )
                return f"after restart ({state}) the endpoint serves {config.model_name} v{result.version} ({changed})"
            last = f"{_differ(served, expected)} of 150 predictions still differ from v{result.version}"
        except MetroE2EError as exc:
            last = str(exc)
        time.sleep(2)
    raise ClauseFailed(
        f"the endpoint to serve v{result.version} within {ctx.options.restart_timeout_s:.0f} s of the restart",
        last,
        url=ctx.config.serving_url,
    )


def _served_before(ctx: RunContext, rows, attempts: int = 3) -> list | None:
    """The served predictions before the restart; None if serving does not answer (a passing error, a 503)."""
    for attempt in range(attempts):
        try:
            return _client(ctx).predict_frame(rows).predictions
        except MetroE2EError:
            if attempt + 1 < attempts:
                time.sleep(1)
    return None


def _predictions(model, rows) -> list | None:
    return None if model is None else [int(p) for p in model.predict(rows).tolist()]


def _distinguishable_version(ctx: RunContext, config, result, *, served: list):
    """Train and promote a version of the run's model whose predictions differ from ``served``, so that serving
    it after the restart is observable; ``Undecided`` when no split gives one."""
    frame, rows = data.iris_frame(), _rows()
    for seed in DISTINGUISHING_SPLITS:
        parts = data.split(frame, seed=seed)
        if [int(p) for p in training.fit(parts)[0].predict(rows)] == served:
            continue
        try:
            trained = training.train(config, parts, lineage=ctx.run_id)  # the same fit, logged and registered
            where = registry.locate_version(config, config.model_name, trained.version)
            promotion.promote_location(ctx.storage, where, config=ctx.config)
            ctx.results["promoted"] = (config, trained)
        except MetroE2EError as exc:
            raise _fail_from(exc, "a second version, distinguishable from the served model, to be promoted") from None
        return config, trained, [int(p) for p in _load_latest(ctx).predict(rows).tolist()]
    raise Undecided(
        f"the model served before the promotion predicts like {config.model_name} v{result.version} on all 150 "
        f"rows, and so does a version trained on each of {len(DISTINGUISHING_SPLITS)} other splits: whether "
        "serving switched after the restart cannot be seen"
    )


def check_srv_6(ctx: RunContext) -> str:
    client = _client(ctx)
    payload = serving.dataframe_split(_rows(1))
    times = []
    for _ in range(50):
        started = time.perf_counter()
        client.predict(payload)
        times.append((time.perf_counter() - started) * 1000)
    p95 = statistics.quantiles(times, n=20)[-1]
    if p95 > ctx.options.latency_budget_ms:
        raise ClauseFailed(
            f"p95 under {ctx.options.latency_budget_ms:.0f} ms",
            f"p95 {p95:.0f} ms (median {statistics.median(times):.0f} ms)",
            url=client.url,
        )
    return f"p95 {p95:.0f} ms, median {statistics.median(times):.0f} ms over 50 requests"


CHECKS = {
    "GW-1": check_gw_1,
    "S3-1": check_s3_1,
    "S3-2": check_s3_2,
    "S3-3": check_s3_3,
    "S3-4": check_s3_4,
    "S3-5": check_s3_5,
    "MLF-1": check_mlf_1,
    "MLF-2": check_mlf_2,
    "MLF-3": check_mlf_3,
    "MLF-4": check_mlf_4,
    "MLF-5": check_mlf_5,
    "KFP-1": check_kfp_1,
    "KFP-2": check_kfp_2,
    "KFP-3": check_kfp_3,
    "KFP-4": check_kfp_4,
    "PRM-1": check_prm_1,
    "PRM-2": check_prm_2,
    "SRV-1": check_srv_1,
    "SRV-2": check_srv_2,
    "SRV-3": check_srv_3,
    "SRV-4": check_srv_4,
    "SRV-5": check_srv_5,
    "SRV-6": check_srv_6,
}
