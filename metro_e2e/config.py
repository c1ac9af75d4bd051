"""Settings for every endpoint, credential and name of a Metro platform.

Defaults are the values of the platform as deployed (PLATFORM.md), written
once below as named constants. Every endpoint is derived from one external
gateway URL unless it is set on its own. Each setting is declared once, as a
``MetroConfig`` field made by ``setting(...)``: its help, default, validator
and secrecy; ``SETTINGS``, the step CLIs' options and ``markdown_table()``
are read from there.

Precedence, highest first (the only place it is written down)::

    command-line option  >  METRO_* environment variable  >  ini (pytest.ini/tox.ini [pytest] metro_*)  >  default

An empty ``METRO_*`` variable or ini value (``METRO_URL=""``) means unset, for every caller.
A value that does not validate raises ``ConfigError`` naming the setting and
where its value came from. Secrets are wrapped in ``Secret`` so they never
appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from metro_e2e.errors import ConfigError

DEFAULT_URL = "http://localhost"
IN_CLUSTER_URL = "http://istio-ingressgateway.istio-system.svc.cluster.local"
MLFLOW_PATH = "/mlflow"
SERVING_PATH = "/mlflow-model/invocations"
SERVING_HOST = "mlflow-model.local"
KFP_PATH = "/pipeline"
DEFAULT_ACCESS_KEY = "minio"
DEFAULT_SECRET_KEY = "minio123"
DEFAULT_REGION = "us-east-1"
DATA_BUCKET = "ml-data"
MODELS_BUCKET = "ml-models"
DATA_KEY = "iris/iris.csv"
LATEST_PREFIX = "latest/"
EXPERIMENT = "iris-experiment"
MODEL_NAME = "iris-model"
ARTIFACT_NAME = "iris-model"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MASK = "***"
DEFAULT_SOURCE = "the built-in default"


class Secret:
    """A credential that prints as ``***``; ``reveal()`` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _is_default(source: str) -> bool:
    return source == DEFAULT_SOURCE or source.startswith("derived from url")


def _source_label(kind: str, name: str) -> str:
    return {
        "cli": f"command-line option --{name}",
        "env": f"environment variable {name}",
        "ini": f"ini option {name}",
        "default": DEFAULT_SOURCE,
    }[kind]


def _check_url(value: str, *, schemes: tuple[str, ...], root_only: bool) -> str:
    """Return the URL without a trailing slash, or raise ValueError saying what is wrong."""
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError("the URL has no host name")
        try:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ValueError("the URL has an invalid port") from None
        if parts.query or parts.fragment:
            raise ValueError("the URL must not carry a query or fragment")
        if root_only and parts.path not in ("", "/"):
            raise ValueError(f"expected the gateway root, not a path ({parts.path!r})")
        if any(c.isspace() for c in value):
            raise ValueError("the URL contains white space")
    return value.rstrip("/") if parts.path in ("", "/") or not root_only else value


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _check_bucket(value: str) -> str:
    if not _BUCKET_RE.match(value) or ".." in value or ".-" in value or "-." in value:
        raise ValueError("expected an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return value
    raise ValueError("a bucket name must not look like an IP address")


def _check_nonempty(value: str) -> str:
    if not value or value != value.strip():
        raise ValueError("expected a non-empty value without surrounding white space")
    return value


def _check_key(value: str) -> str:
    _check_nonempty(value)
    if value.startswith("/"):
        raise ValueError("an S3 key must not start with '/'")
    return value


def _check_prefix(value: str) -> str:
    _check_key(value)
    if not value.endswith("/"):
        raise ValueError("a prefix must end with '/'")
    return value


def _check_timeout(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise ValueError("expected a number of seconds between 0 and 3600")
    return seconds


def _http(root_only: bool) -> Callable[[str], str]:
    return lambda v: _check_url(v, schemes=("http", "https"), root_only=root_only)


_SPEC = "metro_e2e.setting"  # the metadata key of a setting's declaration on its MetroConfig field


@dataclass(frozen=True)
class Setting:
    """One setting, as declared by ``setting(...)`` on its ``MetroConfig`` field."""

    name: str
    help: str
    check: Callable[[Any], Any]
    default: Callable[[str], Any]  # the gateway URL -> the default value
    secret: bool = False
    derived: bool = False  # the default is computed from `url`
    step: bool = False  # the step CLIs take it as --<name>

    @property
    def env(self) -> str:
        return "METRO_" + self.name.upper()

    @property
    def ini(self) -> str:
        return "metro_" + self.name

    @property
    def option(self) -> str | None:
        """The step CLIs' option for this setting, or None when they take it only from the environment."""
        return f"--{self.name}" if self.step else None

    def default_text(self, default_url: str = DEFAULT_URL) -> str:
        """The default in words: ``<url>/mlflow`` for a derived one, ``unset`` for none, seconds without ``.0``."""
        if self.name == "url":
            return default_url
        value = self.default("<url>" if self.derived else default_url)
        if value is None:
            return "unset"
        return f"{value:g}" if isinstance(value, float) else str(value)


def setting(
    help: str,
    default: Any = None,
    *,
    check: Callable[[Any], Any],
    derive: Callable[[str], Any] | None = None,
    secret: bool = False,
    step: bool = False,
) -> Any:
    """Declare a setting as a ``MetroConfig`` field: the one place its help, default, validator and secrecy are written.

    ``default`` is its value when it is not set, or ``derive(url)`` computes it from the gateway URL;
    ``secret`` wraps the value in ``Secret``; ``step`` makes it an option of the step CLIs.
    """
    make = derive or (lambda url: default)
    spec = Setting("", help, check, make, secret=secret, derived=derive is not None, step=step)  # named by SETTINGS
    value = make(DEFAULT_URL)
    if secret:
        return field(default_factory=lambda: Secret(value), metadata={_SPEC: spec})
    return field(default=value, metadata={_SPEC: spec})


@dataclass(frozen=True, kw_only=True)
class MetroConfig:
    """Resolved settings for one Metro platform. Build it with ``load_config`` or ``from_env``.

    Each field below is a setting's only declaration; ``SETTINGS`` is read from them. Order matters:
    ``url`` comes first because the endpoints after it derive from it.
    """

    url: str = setting("gateway URL every endpoint derives from", DEFAULT_URL, check=_http(root_only=True), step=True)
    in_cluster_url: str = setting(
        "gateway URL as seen from inside the cluster, for pipeline steps", IN_CLUSTER_URL, check=_http(root_only=True)
    )
    s3_endpoint: str = setting("S3 (MinIO) endpoint", check=_http(root_only=True), derive=lambda url: url, step=True)
    tracking_uri: str = setting(
        "MLflow tracking URI",
        check=lambda v: _check_url(v, schemes=("http", "https", "sqlite", "file"), root_only=False),
        derive=lambda url: url + MLFLOW_PATH,
        step=True,
    )
    serving_url: str = setting(
        "the served model's invocations endpoint", check=_http(root_only=False), derive=lambda url: url + SERVING_PATH
    )
    serving_host: str = setting("Host header that routes to the served model", SERVING_HOST, check=_check_nonempty)
    kfp_url: str = setting("Kubeflow Pipelines API", check=_http(root_only=False), derive=lambda url: url + KFP_PATH)
    s3_access_key: Secret = setting("S3 access key", DEFAULT_ACCESS_KEY, check=_check_nonempty, secret=True)
    s3_secret_key: Secret = setting("S3 secret key", DEFAULT_SECRET_KEY, check=_check_nonempty, secret=True)
    s3_region: str = setting("region S3 requests are signed for", DEFAULT_REGION, check=_check_nonempty)
    data_bucket: str = setting("bucket for datasets", DATA_BUCKET, check=_check_bucket, step=True)
    models_bucket: str = setting("bucket for models", MODELS_BUCKET, check=_check_bucket, step=True)
    data_key: str = setting("key of the Iris CSV in the data bucket", DATA_KEY, check=_check_key, step=True)
    latest_prefix: str = setting(
        "prefix in the models bucket that the serving pod loads", LATEST_PREFIX, check=_check_prefix, step=True
    )
    experiment: str = setting("MLflow experiment", EXPERIMENT, check=_check_nonempty, step=True)
    model_name: str = setting("registered model name", MODEL_NAME, check=_check_nonempty, step=True)
    artifact_name: str = setting("artifact path of the model in its run", ARTIFACT_NAME, check=_check_nonempty)
    artifact_root: str | None = setting(
        "s3:// root for a new experiment's artifacts (unset: the server's --default-artifact-root)",
        check=lambda v: _check_url(v, schemes=("s3",), root_only=False) if v else None,
        step=True,
    )
    connect_timeout: float = setting("seconds to wait to connect", CONNECT_TIMEOUT, check=_check_timeout, step=True)
    read_timeout: float = setting("seconds to wait for an answer", READ_TIMEOUT, check=_check_timeout, step=True)
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MetroConfig:
        """Settings from ``METRO_*`` variables of ``environ`` over the defaults."""
        return load_config(environ=environ)

    def source_of(self, name: str) -> str:
        """Where the value of setting ``name`` came from, in words."""
        return self.sources.get(name, DEFAULT_SOURCE)

    def replace(self, **changes: Any) -> MetroConfig:
        """A copy with ``changes`` applied as command-line values, validated again.

        Settings that were explicitly set keep their value and source; settings
        left at their default are derived again (so changing ``url`` moves
        every derived endpoint).
        """
        _refuse_unknown(changes)
        kept: dict[str, tuple[Any, str]] = {}
        for s in SETTINGS:
            source = self.source_of(s.name)
            if s.name not in changes and not _is_default(source):
                value = getattr(self, s.name)
                kept[s.name] = (value.reveal() if isinstance(value, Secret) else value, source)
        return _resolve(cli=changes, env={}, ini={}, kept=kept)

    def mask(self, text: str) -> str:
        """``text`` with every secret value of this config replaced by ``***`` (also a password in the URL)."""
        for s in SETTINGS:
            if s.secret:
                value = getattr(self, s.name).reveal()
                if value:
                    text = text.replace(value, MASK)
        password = urlsplit(self.url).password
        if password:
            text = text.replace(f":{password}@", f":{MASK}@")
        return text


SETTINGS: tuple[Setting, ...] = tuple(
    dataclasses.replace(f.metadata[_SPEC], name=f.name) for f in dataclasses.fields(MetroConfig) if _SPEC in f.metadata
)
SETTING_NAMES = tuple(s.name for s in SETTINGS)
# The platform's MinIO credentials in the cluster (PLATFORM.md): the secret, and the variable each key becomes
# (the pipeline's steps and the in-cluster Job read them as these settings)
CREDENTIALS_SECRET = "mlpipeline-minio-artifact"
SECRET_TO_ENV = {
    key: next(s.env for s in SETTINGS if s.name == name)
    for key, name in (("accesskey", "s3_access_key"), ("secretkey", "s3_secret_key"))
}


def _refuse_unknown(names: Mapping[str, Any]) -> None:
    unknown = sorted(set(names) - set(SETTING_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r}",
            setting=unknown[0],
            source="the caller",
            hint="valid settings: " + ", ".join(SETTING_NAMES),
        )


def load_config(
    *,
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    ini: Mapping[str, Any] | None = None,
    default_url: str = DEFAULT_URL,
) -> MetroConfig:
    """Resolve every setting by precedence (CLI > ``METRO_*`` env > ini > default) and validate it.

    ``cli`` maps setting names to values (``None`` means "not given");
    ``environ`` is read for ``METRO_*`` variables, an empty one meaning unset;
    ``ini`` maps setting names or ``metro_*`` ini keys to values (an empty one means unset);
    ``default_url`` is the gateway URL used when none is given (the step
    CLIs pass the in-cluster URL).
    """
    _refuse_unknown(cli or {})
    env = {s.name: environ[s.env] for s in SETTINGS if environ and environ.get(s.env) not in (None, "")}
    ini_values: dict[str, Any] = {}
    for s in SETTINGS:
        for key in (s.ini, s.name):
            if ini and ini.get(key) not in (None, ""):
                ini_values[s.name] = ini[key]
                break
    return _resolve(cli=dict(cli or {}), env=env, ini=ini_values, default_url=default_url)


def _resolve(
    *,
    cli: Mapping[str, Any],
    env: Mapping[str, Any],
    ini: Mapping[str, Any],
    kept: Mapping[str, tuple[Any, str]] | None = None,
    default_url: str = DEFAULT_URL,
) -> MetroConfig:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        if cli.get(s.name) is not None:
            raw, source = cli[s.name], _source_label("cli", s.name)
        elif s.name in env:
            raw, source = env[s.name], _source_label("env", s.env)
        elif s.name in ini:
            raw, source = ini[s.name], _source_label("ini", s.ini)
        elif kept and s.name in kept:
            raw, source = kept[s.name]
        else:
            raw = default_url if s.name == "url" else s.default(values.get("url", default_url))
            source = f"derived from url ({sources['url']})" if s.derived else DEFAULT_SOURCE
        if raw is None:  # an optional setting (artifact_root) left unset
            values[s.name], sources[s.name] = None, source
            continue
        try:
            value = s.check(raw.strip() if isinstance(raw, str) and not s.secret else raw)
        except ValueError as exc:
            shown = MASK if s.secret else repr(raw)
            raise ConfigError(
                f"setting {s.name} = {shown} (from {source}) is invalid: {exc}",
                setting=s.name,
                source=source,
                hint=f"fix {s.env} or --{s.name}",
            ) from None
        values[s.name] = Secret(value) if s.secret else value
        sources[s.name] = source
    return MetroConfig(**values, sources=sources)


def describe(config: MetroConfig) -> dict[str, str]:
    """Each setting's display value (secrets masked) and source, for reports."""
    return {s.name: f"{MASK if s.secret else getattr(config, s.name)}  [{config.source_of(s.name)}]" for s in SETTINGS}


def markdown_table() -> str:
    """The configuration table in Markdown: one row per setting, from its declaration (docs/configuration.md)."""
    code = "`{}`".format
    rows = [
        "| setting | env var | ini key | step CLI option | default | secret | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        if s.name == "url":
            default = f"{code(DEFAULT_URL)} (step CLIs: {code(IN_CLUSTER_URL)})"
        elif s.derived:
            default = f"derived from url: {code(s.default_text())}"
        else:
            default = "unset" if s.default(DEFAULT_URL) is None else code(s.default_text())
        cells = [s.name, code(s.env), code(s.ini), code(s.option) if s.option else "-", default]
        cells += ["yes" if s.secret else "no", s.help]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
