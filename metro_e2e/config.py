"""Settings for every endpoint, credential and name of a Metro platform.

Defaults are the values of the platform as deployed (PLATFORM.md), written
once below as named constants. Every endpoint is derived from one external
gateway URL unless it is set on its own.

Precedence, highest first (the only place it is written down)::

    command-line option  >  METRO_* environment variable  >  ini (pytest.ini/tox.ini [pytest] metro_*)  >  default

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


@dataclass(frozen=True)
class _Setting:
    name: str
    check: Callable[[Any], Any]
    default: Callable[[str], Any] | None = None
    secret: bool = False
    derived: bool = False  # the default is computed from `url`

    @property
    def env(self) -> str:
        return "METRO_" + self.name.upper()

    @property
    def ini(self) -> str:
        return "metro_" + self.name


# Order matters: `url` comes first because the endpoints below derive from it.
SETTINGS: tuple[_Setting, ...] = (
    _Setting("url", _http(root_only=True), lambda url: DEFAULT_URL),
    _Setting("in_cluster_url", _http(root_only=True), lambda url: IN_CLUSTER_URL),
    _Setting("s3_endpoint", _http(root_only=True), lambda url: url, derived=True),
    _Setting(
        "tracking_uri",
        lambda v: _check_url(v, schemes=("http", "https", "sqlite", "file"), root_only=False),
        lambda url: url + MLFLOW_PATH,
        derived=True,
    ),
    _Setting("serving_url", _http(root_only=False), lambda url: url + SERVING_PATH, derived=True),
    _Setting("serving_host", _check_nonempty, lambda url: SERVING_HOST),
    _Setting("kfp_url", _http(root_only=False), lambda url: url + KFP_PATH, derived=True),
    _Setting("s3_access_key", _check_nonempty, lambda url: DEFAULT_ACCESS_KEY, secret=True),
    _Setting("s3_secret_key", _check_nonempty, lambda url: DEFAULT_SECRET_KEY, secret=True),
    _Setting("s3_region", _check_nonempty, lambda url: DEFAULT_REGION),
    _Setting("data_bucket", _check_bucket, lambda url: DATA_BUCKET),
    _Setting("models_bucket", _check_bucket, lambda url: MODELS_BUCKET),
    _Setting("data_key", _check_key, lambda url: DATA_KEY),
    _Setting("latest_prefix", _check_prefix, lambda url: LATEST_PREFIX),
    _Setting("experiment", _check_nonempty, lambda url: EXPERIMENT),
    _Setting("model_name", _check_nonempty, lambda url: MODEL_NAME),
    _Setting("artifact_name", _check_nonempty, lambda url: ARTIFACT_NAME),
    _Setting(
        "artifact_root",
        lambda v: _check_url(v, schemes=("s3",), root_only=False) if v else None,
        lambda url: None,
    ),
    _Setting("connect_timeout", _check_timeout, lambda url: CONNECT_TIMEOUT),
    _Setting("read_timeout", _check_timeout, lambda url: READ_TIMEOUT),
)
SETTING_NAMES = tuple(s.name for s in SETTINGS)


@dataclass(frozen=True, kw_only=True)
class MetroConfig:
    """Resolved settings for one Metro platform. Build it with ``load_config`` or ``from_env``."""

    url: str = DEFAULT_URL
    in_cluster_url: str = IN_CLUSTER_URL
    s3_endpoint: str = DEFAULT_URL
    tracking_uri: str = DEFAULT_URL + MLFLOW_PATH
    serving_url: str = DEFAULT_URL + SERVING_PATH
    serving_host: str = SERVING_HOST
    kfp_url: str = DEFAULT_URL + KFP_PATH
    s3_access_key: Secret = field(default_factory=lambda: Secret(DEFAULT_ACCESS_KEY))
    s3_secret_key: Secret = field(default_factory=lambda: Secret(DEFAULT_SECRET_KEY))
    s3_region: str = DEFAULT_REGION
    data_bucket: str = DATA_BUCKET
    models_bucket: str = MODELS_BUCKET
    data_key: str = DATA_KEY
    latest_prefix: str = LATEST_PREFIX
    experiment: str = EXPERIMENT
    model_name: str = MODEL_NAME
    artifact_name: str = ARTIFACT_NAME
    artifact_root: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
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
    ``ini`` maps setting names or ``metro_*`` ini keys to values;
    ``default_url`` is the gateway URL used when none is given (the step
    CLIs pass the in-cluster URL).
    """
    _refuse_unknown(cli or {})
    env = {s.name: environ[s.env] for s in SETTINGS if environ and s.env in environ}
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
        if raw is None and s.name == "artifact_root":
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
    out = {}
    for f in dataclasses.fields(config):
        if f.name == "sources":
            continue
        value = getattr(config, f.name)
        out[f.name] = f"{MASK if isinstance(value, Secret) else value}  [{config.source_of(f.name)}]"
    return out
