"""Config: defaults from PLATFORM.md, derivation from one URL, precedence, validation, secrecy."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metro_e2e import config as cfg
from metro_e2e.config import MetroConfig, Secret, load_config
from metro_e2e.errors import ConfigError


def test_defaults_are_the_platform_as_deployed():
    c = load_config(environ={})
    assert c.url == "http://localhost"
    assert c.s3_endpoint == "http://localhost"
    assert c.tracking_uri == "http://localhost/mlflow"
    assert c.serving_url == "http://localhost/mlflow-model/invocations"
    assert c.serving_host == "mlflow-model.local"
    assert c.kfp_url == "http://localhost/pipeline"
    assert (c.s3_access_key.reveal(), c.s3_secret_key.reveal()) == ("minio", "minio123")
    assert (c.data_bucket, c.models_bucket, c.data_key, c.latest_prefix) == (
        "ml-data",
        "ml-models",
        "iris/iris.csv",
        "latest/",
    )
    assert (c.experiment, c.model_name) == ("iris-experiment", "iris-model")
    assert c.in_cluster_url == "http://istio-ingressgateway.istio-system.svc.cluster.local"


def test_every_endpoint_derives_from_one_gateway_url():
    c = load_config(environ={"METRO_URL": "https://metro.example.com:8443/"})
    assert c.url == "https://metro.example.com:8443"
    assert c.s3_endpoint == "https://metro.example.com:8443"
    assert c.tracking_uri == "https://metro.example.com:8443/mlflow"
    assert c.serving_url == "https://metro.example.com:8443/mlflow-model/invocations"
    assert c.kfp_url == "https://metro.example.com:8443/pipeline"
    assert c.source_of("tracking_uri") == "derived from url (environment variable METRO_URL)"


def test_step_default_is_the_in_cluster_gateway():
    c = load_config(environ={}, default_url=cfg.IN_CLUSTER_URL)
    assert c.tracking_uri == cfg.IN_CLUSTER_URL + "/mlflow"


def test_precedence_cli_over_env_over_ini_over_default():
    env = {"METRO_EXPERIMENT": "from-env", "METRO_MODEL_NAME": "env-model"}
    ini = {"metro_experiment": "from-ini", "metro_model_name": "ini-model", "metro_data_key": "ini/key.csv"}
    c = load_config(cli={"experiment": "from-cli"}, environ=env, ini=ini)
    assert c.experiment == "from-cli" and "command-line" in c.source_of("experiment")
    assert c.model_name == "env-model" and "METRO_MODEL_NAME" in c.source_of("model_name")
    assert c.data_key == "ini/key.csv" and "metro_data_key" in c.source_of("data_key")
    assert c.models_bucket == "ml-models" and c.source_of("models_bucket") == cfg.DEFAULT_SOURCE


def test_explicit_endpoint_wins_over_derived():
    c = load_config(environ={"METRO_URL": "http://gw.test", "METRO_TRACKING_URI": "http://mlflow.test:5000"})
    assert c.tracking_uri == "http://mlflow.test:5000"
    assert c.s3_endpoint == "http://gw.test"


@pytest.mark.parametrize(
    ("env", "setting", "words"),
    [
        ({"METRO_URL": "gateway.local"}, "url", "http://"),
        ({"METRO_URL": "http://"}, "url", "no host"),
        ({"METRO_URL": "http://gw:99999"}, "url", "port"),
        ({"METRO_URL": "http://gw/mlflow"}, "url", "gateway root"),
        ({"METRO_URL": "http://gw/?x=1"}, "url", "query"),
        ({"METRO_S3_ACCESS_KEY": " "}, "s3_access_key", "non-empty"),
        ({"METRO_DATA_BUCKET": "ML_Data"}, "data_bucket", "bucket name"),
        ({"METRO_MODELS_BUCKET": "192.168.1.1"}, "models_bucket", "IP address"),
        ({"METRO_LATEST_PREFIX": "latest"}, "latest_prefix", "end with '/'"),
        ({"METRO_DATA_KEY": "/iris.csv"}, "data_key", "start with '/'"),
        ({"METRO_CONNECT_TIMEOUT": "soon"}, "connect_timeout", "seconds"),
        ({"METRO_READ_TIMEOUT": "-1"}, "read_timeout", "between"),
        ({"METRO_TRACKING_URI": "ftp://x"}, "tracking_uri", "http://"),
        ({"METRO_ARTIFACT_ROOT": "http://x"}, "artifact_root", "s3://"),
    ],
)
def test_malformed_values_name_the_setting_and_its_source(env, setting, words):
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    err = info.value
    assert err.setting == setting
    var = next(iter(env))
    assert var in err.source and var in str(err)
    assert words in str(err)
    assert err.exit_code == 2


def test_an_empty_environment_variable_means_unset():
    empty = {s.env: "" for s in cfg.SETTINGS}
    unset, blank = load_config(environ={}), load_config(environ=empty)
    assert blank == unset and blank.sources == unset.sources and cfg.describe(blank) == cfg.describe(unset)
    ini = {"metro_url": "http://ini.test", "metro_experiment": "ini-exp"}
    under_ini = load_config(environ=empty, ini=ini)
    assert (under_ini.url, under_ini.tracking_uri, under_ini.experiment) == (
        "http://ini.test",
        "http://ini.test/mlflow",
        "ini-exp",
    )
    assert under_ini.source_of("url") == "ini option metro_url"
    in_cluster = load_config(environ={"METRO_URL": ""}, default_url=cfg.IN_CLUSTER_URL)
    assert in_cluster.url == cfg.IN_CLUSTER_URL and MetroConfig.from_env({"METRO_URL": ""}).url == cfg.DEFAULT_URL


def test_an_empty_ini_value_means_unset():
    assert load_config(environ={}, ini={s.ini: "" for s in cfg.SETTINGS}) == load_config(environ={})


def test_each_setting_is_declared_once_as_a_field_with_its_help():
    fields = [f.name for f in dataclasses.fields(MetroConfig) if f.name != "sources"]
    assert list(cfg.SETTING_NAMES) == fields and cfg.SETTING_NAMES[0] == "url"
    for s in cfg.SETTINGS:
        assert s.help and "\n" not in s.help and len(s.help) <= 100, s.name
        assert (s.env, s.ini) == ("METRO_" + s.name.upper(), "metro_" + s.name)
    assert {s.name for s in cfg.SETTINGS if s.secret} == {"s3_access_key", "s3_secret_key"}
    assert {s.name for s in cfg.SETTINGS if s.derived} == {"s3_endpoint", "tracking_uri", "serving_url", "kfp_url"}
    # the dataclass defaults are the defaults load_config resolves (with their sources)
    assert MetroConfig() == load_config(environ={})


def test_the_configuration_table_has_one_row_per_setting():
    lines = cfg.markdown_table().splitlines()
    assert lines[0].startswith("| setting | env var | ini key | step CLI option | default | secret |")
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in lines[2:]}
    assert list(rows) == list(cfg.SETTING_NAMES) and len(lines) == 2 + len(cfg.SETTINGS)
    for s in cfg.SETTINGS:
        row = rows[s.name]
        assert row.count(" | ") == 6 and row.endswith(f" | {s.help} |"), row
        assert f"`{s.env}`" in row and f"`{s.ini}`" in row
        assert (f"`--{s.name}`" in row) == s.step
        assert (" | yes | " in row) == s.secret
    assert "derived from url: `<url>/mlflow`" in rows["tracking_uri"]
    assert f"`{cfg.DEFAULT_URL}`" in rows["url"] and cfg.IN_CLUSTER_URL in rows["url"]
    assert " | `5` | " in rows["connect_timeout"] and " | unset | " in rows["artifact_root"]


def test_cli_source_is_named():
    with pytest.raises(ConfigError, match="command-line option --url"):
        load_config(cli={"url": "nope"}, environ={})


def test_unknown_cli_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_config(cli={"colour": "blue"}, environ={})


def test_secrets_never_appear_in_repr_errors_or_describe():
    env = {"METRO_S3_ACCESS_KEY": "AKIA-very-secret", "METRO_S3_SECRET_KEY": "s3cr3t-value-42"}
    c = load_config(environ=env)
    for text in (repr(c), str(c), str(cfg.describe(c)), repr(c.s3_secret_key), str(c.s3_access_key)):
        assert "AKIA-very-secret" not in text and "s3cr3t-value-42" not in text
    assert c.mask("boom s3cr3t-value-42 and AKIA-very-secret") == "boom *** and ***"
    with pytest.raises(ConfigError) as info:
        load_config(environ={"METRO_S3_SECRET_KEY": " s3cr3t-value-42"})
    assert "s3cr3t-value-42" not in str(info.value) and "***" in str(info.value)


def test_replace_rederives_defaults_and_keeps_explicit_values():
    c = load_config(environ={"METRO_TRACKING_URI": "http://mlflow.test"})
    moved = c.replace(url="http://other.test")
    assert moved.s3_endpoint == "http://other.test"
    assert moved.serving_url == "http://other.test/mlflow-model/invocations"
    assert moved.tracking_uri == "http://mlflow.test"
    with pytest.raises(ConfigError):
        c.replace(data_bucket="Bad_Bucket")
    with pytest.raises(ConfigError, match="unknown setting 'bucket'"):
        c.replace(bucket="ml-data")


def test_from_env_and_frozen():
    c = MetroConfig.from_env({"METRO_MODEL_NAME": "m"})
    assert c.model_name == "m"
    with pytest.raises(AttributeError):
        c.model_name = "x"  # type: ignore[misc]
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


_bucket_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789")


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=61), _bucket_chars, _bucket_chars)
def test_valid_bucket_names_are_accepted(middle, first, last):
    name = first + middle + last
    assert load_config(environ={"METRO_DATA_BUCKET": name}).data_bucket == name


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@given(st.text(min_size=0, max_size=70) | st.from_regex(r"[a-z0-9][a-z0-9.\-]{0,65}", fullmatch=True))
def test_invalid_bucket_names_are_rejected(name):
    valid = (
        3 <= len(name) <= 63
        and all(c in "abcdefghijklmnopqrstuvwxyz0123456789.-" for c in name)
        and name[0].isalnum()
        and name[-1].isalnum()
        and ".." not in name
        and ".-" not in name
        and "-." not in name
        and not _is_ip(name)
    )
    if not name:  # empty means unset
        assert load_config(environ={"METRO_DATA_BUCKET": name}).data_bucket == cfg.DATA_BUCKET
    elif valid:
        assert load_config(environ={"METRO_DATA_BUCKET": name}).data_bucket == name
    else:
        with pytest.raises(ConfigError):
            load_config(environ={"METRO_DATA_BUCKET": name})


def test_a_password_in_the_url_is_masked_like_the_s3_secret():
    config = load_config(cli={"url": "http://user:gw-pass-31@gw.test"}, environ={"METRO_S3_SECRET_KEY": "s3-pass-47"})
    text = config.mask(f"gateway {config.url}, secret s3-pass-47")
    assert "gw-pass-31" not in text and "s3-pass-47" not in text
    assert "http://user:***@gw.test" in text
