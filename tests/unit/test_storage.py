"""Storage: paginated listing, batched deletes, and botocore failures turned into clear errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from botocore.stub import Stubber

from metro_e2e.config import load_config
from metro_e2e.errors import AuthError, EndpointUnreachable, StorageError
from metro_e2e.storage import Storage


def test_list_paginates_past_1000_and_delete_batches(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    keys = [f"ns/k{i:05d}" for i in range(1001)]
    for key in keys:
        storage.client.put_object(Bucket="ml-data", Key=key, Body=b"x")
    assert storage.list_keys("ml-data", "ns/") == keys
    calls = []
    storage.client.meta.events.register("before-call.s3.DeleteObjects", lambda **kw: calls.append(1))
    assert storage.delete_prefix("ml-data", "ns/") == 1001
    assert len(calls) == 2
    assert storage.list_keys("ml-data", "ns/") == []


def test_bucket_exists(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    assert storage.bucket_exists("ml-models")
    assert not storage.bucket_exists("no-such-bucket")
    assert set(storage.list_buckets()) >= {"ml-models", "ml-data"}


def _stubbed(code: str, status: int, method: str = "get_object"):
    storage = Storage(load_config(environ={"METRO_URL": "http://gw.test"}))
    stub = Stubber(storage.client)
    stub.add_client_error(method, service_error_code=code, http_status_code=status)
    stub.activate()
    return storage


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"])
def test_refused_credentials_are_auth_errors(code):
    storage = _stubbed(code, 403)
    with pytest.raises(AuthError) as info:
        storage.get_bytes("ml-data", "iris/iris.csv")
    assert "refused the credentials" in str(info.value) and "METRO_S3_SECRET_KEY" in str(info.value)
    assert info.value.exit_code == 5
    assert "minio123" not in str(info.value)


def test_missing_bucket_and_key_are_storage_errors():
    with pytest.raises(StorageError, match="bucket 'ml-data' does not exist at S3 endpoint http://gw.test"):
        _stubbed("NoSuchBucket", 404).get_bytes("ml-data", "k")
    with pytest.raises(StorageError, match="no such object"):
        _stubbed("NoSuchKey", 404).get_bytes("ml-data", "k")
    with pytest.raises(StorageError, match="S3 answered SlowDown"):
        _stubbed("SlowDown", 503).get_bytes("ml-data", "k")


@pytest.mark.parametrize(("code", "status"), [("502", 502), ("BadGateway", 502), ("504", 504)])
def test_gateway_5xx_without_an_s3_answer_is_unreachable(code, status):
    with pytest.raises(EndpointUnreachable, match=f"answered {status}: the S3 service behind it is not answering"):
        _stubbed(code, status).get_bytes("ml-data", "k")


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://gw.test/ml-data"),
        ConnectTimeoutError(endpoint_url="http://gw.test/ml-data"),
    ],
)
def test_unreachable_endpoint_names_the_url_and_source(exc):
    storage = Storage(load_config(environ={"METRO_URL": "http://gw.test"}))

    def fail(**kwargs):
        raise exc

    storage.client.meta.events.register("before-send.s3.GetObject", fail)
    with pytest.raises(EndpointUnreachable) as info:
        storage.get_bytes("ml-data", "iris/iris.csv")
    assert info.value.url == "http://gw.test"
    assert "[derived from url (environment variable METRO_URL)]" in str(info.value)
    said = {EndpointConnectionError: "did not answer", ConnectTimeoutError: "no connection within 5 s"}[type(exc)]
    assert said in str(info.value) and "METRO_S3_ENDPOINT" in str(info.value)
    if isinstance(exc, ConnectTimeoutError):
        assert "METRO_CONNECT_TIMEOUT" in str(info.value)  # the setting that ran out


def test_delete_reports_keys_s3_could_not_delete():
    storage = Storage(load_config(environ={}))
    stub = Stubber(storage.client)
    stub.add_response("delete_objects", {"Errors": [{"Key": "a", "Code": "AccessDenied", "Message": "no"}]})
    stub.activate()
    with pytest.raises(StorageError, match="could not delete 1 object.*'a': AccessDenied"):
        storage.delete_keys("ml-data", ["a"])


def test_client_has_bounded_timeouts():
    storage = Storage(load_config(environ={"METRO_CONNECT_TIMEOUT": "2", "METRO_READ_TIMEOUT": "7"}))
    assert storage.client.meta.config.connect_timeout == 2
    assert storage.client.meta.config.read_timeout == 7
    assert storage.client.meta.config.retries["total_max_attempts"] == 3


def test_get_bytes_or_none_is_none_only_for_a_missing_key(metro_unit_platform):
    storage = Storage(metro_unit_platform)
    storage.put_bytes("ml-data", "here.txt", b"x")
    assert storage.get_bytes_or_none("ml-data", "here.txt") == b"x"
    assert storage.get_bytes_or_none("ml-data", "absent.txt") is None
    with pytest.raises(StorageError, match="does not exist"):
        storage.get_bytes_or_none("metro-e2e-absent-bucket", "here.txt")
