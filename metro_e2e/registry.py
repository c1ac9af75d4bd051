"""MLflow tracking and model registry access: clients, error translation, version lookup.

``locate_version`` answers "where in S3 are this registered version's files?"
for both storage layouts: MLflow 2 keeps a model under its run
(``s3://ml-models/<exp>/<run>/artifacts/<name>/``), MLflow 3 under a logged
model (``s3://ml-models/<exp>/models/m-<id>/artifacts/``). It asks the
registry for the download URI instead of cutting path segments, which is the
published script's bug (PLATFORM.md breakage 1).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking._model_registry import utils as _registry_utils
from mlflow.tracking._tracking_service import utils as _tracking_utils

from metro_e2e._http import why_in_text
from metro_e2e.config import MetroConfig
from metro_e2e.errors import AuthError, EndpointUnreachable, MetroE2EError, PromotionError, TrackingError
from metro_e2e.mlflow_policy import environ, policy_env

log = logging.getLogger(__name__)

_UNREACHABLE_MARKERS = (
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Connection refused",
    "Read timed out",
    "timed out",
    "Name or service not known",
    "nodename nor servname",
)


def client_version() -> str:
    return mlflow.__version__


def client_major() -> int:
    return int(mlflow.__version__.split(".")[0])


def compatible(client: str, server: str) -> bool:
    """The tested pairs: a 2.x client works with 2.x and 3.x servers; a 3.x client needs a 3.x server."""
    c, s = int(client.split(".")[0]), int(server.split(".")[0])
    return (c == 2 and s in (2, 3)) or (c == 3 and s == 3)


@contextlib.contextmanager
def mlflow_session(config: MetroConfig) -> Iterator[MlflowClient]:
    """Point MLflow (tracking, registry, S3 artifacts) at ``config`` for the block, then restore.

    MLflow reads its S3 endpoint and credentials from the process environment
    and keeps the tracking URI in module state; both are set here and put
    back afterwards, so one process can talk to two platforms in turn (not at
    the same instant from two threads). Requests follow ``client_policy``.
    """
    env = {
        "MLFLOW_S3_ENDPOINT_URL": config.s3_endpoint,
        "AWS_ACCESS_KEY_ID": config.s3_access_key.reveal(),
        "AWS_SECRET_ACCESS_KEY": config.s3_secret_key.reveal(),
        "AWS_DEFAULT_REGION": config.s3_region,
        **policy_env(config),
    }
    # MLflow keeps both URIs in module state (None = unset); there is no public getter for "unset".
    previous_uri = _tracking_utils._tracking_uri
    previous_registry = _registry_utils._registry_uri
    with environ(env):
        mlflow.set_tracking_uri(config.tracking_uri)
        mlflow.set_registry_uri(config.tracking_uri)
        try:
            yield MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
        finally:
            mlflow.set_tracking_uri(previous_uri)
            mlflow.set_registry_uri(previous_registry)


def translate(exc: Exception, config: MetroConfig, action: str) -> MetroE2EError:
    """The metro-e2e error for an MLflow failure while doing ``action``."""
    text = config.mask(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
    where = f"MLflow at {config.tracking_uri} [{config.source_of('tracking_uri')}]"
    if any(m in str(exc) for m in _UNREACHABLE_MARKERS):
        why = why_in_text(str(exc), config.tracking_uri, read_timeout=config.read_timeout)
        return EndpointUnreachable(
            f"cannot {action}: {where}: {why}" if why else f"cannot {action}: {where} did not answer",
            url=config.tracking_uri,
            hint="check METRO_URL / METRO_TRACKING_URI and that the gateway routes /mlflow",
        )
    code = getattr(exc, "error_code", "")
    if "logged-models" in str(exc) and ("404" in str(exc) or code == "ENDPOINT_NOT_FOUND"):
        return TrackingError(
            f"cannot {action}: MLflow client {client_version()} needs the logged-models API, which {where} "
            "does not have (a server older than 3.0)",
            hint="use an MLflow 2.x client (the suite's default range, mlflow<3) or upgrade the server",
        )
    if code == "PERMISSION_DENIED" or " 403" in str(exc) or "status code 403" in str(exc):
        return AuthError(
            f"cannot {action}: {where} answered 403 Forbidden",
            hint="an MLflow 3.5+ server rejects unknown Host headers: start it with --allowed-hosts",
        )
    if re.search(r"Response body: '\s*<(!doctype|html)", str(exc), re.IGNORECASE):
        status = re.search(r"error code (\d{3})", str(exc))
        return TrackingError(
            f"cannot {action}: {where} answered an HTML page{f' (HTTP {status.group(1)})' if status else ''}, "
            "not the MLflow REST API",
            hint="the URL reaches a web page or a login screen instead of MLflow: fix METRO_TRACKING_URI "
            "(--tracking_uri) or METRO_URL, or the gateway's /mlflow route",
        )
    if code == "RESOURCE_DOES_NOT_EXIST":
        return TrackingError(
            f"cannot {action}: {where}: {text[:300]}", hint="check --model_name / METRO_MODEL_NAME and --version"
        )
    return TrackingError(f"cannot {action}: {where} failed: {text[:300]}")


@contextlib.contextmanager
def tracking_errors(config: MetroConfig, action: str) -> Iterator[None]:
    """Translate MLflow and HTTP failures inside the block into metro-e2e errors."""
    try:
        yield
    except MetroE2EError:
        raise
    except (MlflowException, OSError) as exc:
        raise translate(exc, config, action) from exc
    except Exception as exc:  # MLflow's artifact uploads raise boto3's errors as they are
        from metro_e2e.storage import s3_failure

        error = s3_failure(exc, config, action=action)
        if error is None:
            raise
        raise error from exc


def make_client(config: MetroConfig) -> MlflowClient:
    return MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)


def _quote(name: str) -> str:
    """Quote ``name`` for an MLflow search filter, which has no escape character."""
    for quote in ("'", '"'):
        if quote not in name:
            return quote + name + quote
    raise TrackingError(f"model name {name!r} contains both quote characters, which MLflow search cannot express")


def name_filter(name: str) -> str:
    """The ``search_model_versions`` filter for the versions of the registered model ``name``: ``name='...'``
    (``name="..."`` when the name holds a ``'``); ``TrackingError`` when it holds both quote characters."""
    return f"name={_quote(name)}"


def latest_version(client: MlflowClient, name: str) -> str:
    """The highest version number registered under ``name``."""
    versions = [int(v.version) for v in client.search_model_versions(name_filter(name))]
    if not versions:
        raise TrackingError(
            f"registered model {name!r} has no versions",
            hint="check --model_name / METRO_MODEL_NAME, or train and register a model first",
        )
    return str(max(versions))


@dataclass(frozen=True)
class VersionLocation:
    """Where a registered version's files are: ``s3://bucket/prefix`` and which layout that is."""

    name: str
    version: str
    source_uri: str
    bucket: str
    prefix: str
    layout: str  # "run" (MLflow 2) or "logged-model" (MLflow 3)
    run_id: str | None


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/path`` -> (``bucket``, ``some/path/``)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("s3", "s3a") or not parts.netloc:
        raise PromotionError(
            f"model files are at {uri!r}, not in S3",
            hint="the platform's MLflow must run with --default-artifact-root s3://ml-models/",
        )
    prefix = parts.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return parts.netloc, prefix


def locate_version(config: MetroConfig, name: str, version: str = "latest") -> VersionLocation:
    """Find the S3 location of ``name`` version ``version`` ("latest" = highest number)."""
    with mlflow_session(config) as client, tracking_errors(config, f"look up model {name!r}"):
        if version == "latest":
            version = latest_version(client, name)
        mv = client.get_model_version(name, str(version))
        uri = client.get_model_version_download_uri(name, str(version))
    bucket, prefix = parse_s3_uri(uri)
    layout = "logged-model" if "/models/m-" in f"/{prefix}" or str(mv.source).startswith("models:/") else "run"
    log.info("model %s version %s is at s3://%s/%s (%s layout)", name, version, bucket, prefix, layout)
    return VersionLocation(name, str(version), uri, bucket, prefix, layout, mv.run_id)
