"""Registry: finding a version's files in both MLflow layouts (PLATFORM.md breakage 1)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from metro_e2e import data, promotion, registry, training
from metro_e2e.errors import PromotionError, TrackingError
from metro_e2e.storage import Storage

V3_SOURCE = "s3://ml-models/5/models/m-0123456789abcdef/artifacts"
FILES = {"MLmodel": b"flavors: {}", "model.pkl": b"weights", "requirements.txt": b"scikit-learn"}


def _register_v3_layout(config) -> str:
    """A version laid out the MLflow 3 way: files under <exp>/models/m-<id>/artifacts/, no run path."""
    storage = Storage(config)
    for rel, body in FILES.items():
        storage.put_bytes("ml-models", "5/models/m-0123456789abcdef/artifacts/" + rel, body)
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    client.create_registered_model(config.model_name)
    return str(client.create_model_version(config.model_name, source=V3_SOURCE).version)


def test_mlflow2_layout_is_found_under_the_run(metro_unit_platform):
    result = training.train(metro_unit_platform, data.split(data.iris_frame()))
    where = registry.locate_version(metro_unit_platform, metro_unit_platform.model_name)
    assert where.version == result.version
    assert where.bucket == "ml-models"
    if registry.client_major() < 3:
        assert where.layout == "run"
        assert where.prefix.endswith(f"/{result.run_id}/artifacts/iris-model/")
    assert "MLmodel" in {
        k.rsplit("/", 1)[-1] for k in Storage(metro_unit_platform).list_keys("ml-models", where.prefix)
    }


def test_mlflow3_layout_is_found_under_the_logged_model(metro_unit_platform):
    version = _register_v3_layout(metro_unit_platform)
    where = registry.locate_version(metro_unit_platform, metro_unit_platform.model_name, "latest")
    assert (where.version, where.layout) == (version, "logged-model")
    assert where.prefix == "5/models/m-0123456789abcdef/artifacts/"


def test_breakage_1_published_script_copies_nothing_ours_copies_the_model(metro_unit_platform):
    """The guide's serve script cuts segment 3 of the download URI; on the MLflow 3 layout that finds nothing."""
    config = metro_unit_platform
    version = _register_v3_layout(config)
    storage = Storage(config)
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    # --- the published logic, verbatim in spirit ---
    latest_path = client.get_model_version_download_uri(config.model_name, version)
    latest_uuid = latest_path.split("/")[3]
    source_prefix = f"{latest_uuid}/artifacts/iris-model/"
    published_found = storage.client.list_objects_v2(Bucket="ml-models", Prefix=source_prefix).get("Contents", [])
    assert latest_uuid == "5" and published_found == []  # it would "succeed" having copied nothing
    # --- ours ---
    result = promotion.promote(config, storage=storage)
    assert set(result.files) == set(FILES)
    assert promotion.inspect_latest(storage, bucket="ml-models", latest_prefix="latest/").complete


def test_no_versions_is_a_tracking_error(metro_unit_platform):
    client = MlflowClient(tracking_uri=metro_unit_platform.tracking_uri, registry_uri=metro_unit_platform.tracking_uri)
    client.create_registered_model(metro_unit_platform.model_name)
    with pytest.raises(TrackingError, match="has no versions"):
        registry.locate_version(metro_unit_platform, metro_unit_platform.model_name)


def test_model_outside_s3_or_in_another_bucket_is_refused(metro_unit_platform):
    config = metro_unit_platform
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    client.create_registered_model(config.model_name)
    client.create_model_version(config.model_name, source="mlflow-artifacts:/1/abc/artifacts/m")
    with pytest.raises(PromotionError, match="not in S3"):
        promotion.promote(config)
    client.create_model_version(config.model_name, source="s3://other-bucket/1/abc/artifacts/m")
    with pytest.raises(PromotionError, match="stored in bucket 'other-bucket'"):
        promotion.promote(config)


def test_model_names_with_quotes_are_searched_safely(metro_unit_platform):
    config = metro_unit_platform.replace(model_name="it's-a-model")
    client = MlflowClient(tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri)
    client.create_registered_model(config.model_name)
    client.create_model_version(config.model_name, source=V3_SOURCE)
    assert registry.locate_version(config, config.model_name).version == "1"


def test_name_filter_quotes_by_the_quote_the_name_lacks():
    assert registry.name_filter("iris-model") == "name='iris-model'"
    assert registry.name_filter("it's-a-model") == 'name="it\'s-a-model"'
    with pytest.raises(TrackingError, match="contains both quote characters"):
        registry.name_filter('it\'s "quoted"')


def test_session_restores_global_mlflow_state(metro_unit_platform):
    import os

    import mlflow

    mlflow.set_tracking_uri("file:///tmp/elsewhere")
    os.environ.pop("MLFLOW_S3_ENDPOINT_URL", None)
    try:
        with registry.mlflow_session(metro_unit_platform):
            assert mlflow.get_tracking_uri() == metro_unit_platform.tracking_uri
            assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == metro_unit_platform.s3_endpoint
        assert mlflow.get_tracking_uri() == "file:///tmp/elsewhere"
        assert "MLFLOW_S3_ENDPOINT_URL" not in os.environ
    finally:
        mlflow.set_tracking_uri(None)
