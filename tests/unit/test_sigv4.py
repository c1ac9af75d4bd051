"""The local stack's SigV4 verifier against requests botocore itself signs (nothing is sent anywhere)."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from metro_e2e.stack import sigv4

KEY, SECRET = "minio", "minio123"


def _client(secret: str):
    return boto3.client(
        "s3",
        endpoint_url="http://metro-gateway.test:8080",
        aws_access_key_id=KEY,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


def _signed_requests(secret: str, calls) -> list[tuple[str, str, dict]]:
    """(method, raw URI, headers) of every request botocore signs for ``calls``, captured before sending."""
    client = _client(secret)
    seen = []

    def capture(request, **kwargs):
        parts = urlsplit(request.url)
        uri = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        headers.setdefault("Host", parts.netloc)
        seen.append((request.method, uri, headers))
        return AWSResponse(request.url, 200, {}, io.BytesIO(b"<ListAllMyBucketsResult/>"))  # never sent

    client.meta.events.register("before-send.s3", capture)
    for call in calls:
        try:
            call(client)
        except Exception:  # noqa: BLE001 - the canned answer does not parse for every operation; the request was captured
            pass
    return seen


CALLS = [
    lambda c: c.list_buckets(),
    lambda c: c.put_object(Bucket="ml-data", Key="metro-e2e/a b/c+d=é.txt", Body=b"x" * 100),
    lambda c: c.list_objects_v2(Bucket="ml-data", Prefix="metro-e2e/a b/"),
    lambda c: c.delete_objects(Bucket="ml-data", Delete={"Objects": [{"Key": "k"}]}),
    lambda c: c.copy_object(Bucket="ml-models", Key="latest/MLmodel", CopySource={"Bucket": "ml-models", "Key": "x"}),
    lambda c: c.head_bucket(Bucket="ml-models"),
]


def test_requests_signed_with_the_configured_secret_pass():
    requests = _signed_requests(SECRET, CALLS)
    assert len(requests) == len(CALLS)
    for method, uri, headers in requests:
        assert sigv4.verify(method, uri, headers, access_key=KEY, secret_key=SECRET) == sigv4.OK, (method, uri)


def test_a_wrong_secret_is_signature_does_not_match_and_a_wrong_key_is_invalid_access_key():
    for method, uri, headers in _signed_requests("not-the-secret", CALLS):
        assert sigv4.verify(method, uri, headers, access_key=KEY, secret_key=SECRET) == "SignatureDoesNotMatch"
    method, uri, headers = _signed_requests(SECRET, CALLS[:1])[0]
    assert sigv4.verify(method, uri, headers, access_key="other", secret_key=SECRET) == "InvalidAccessKeyId"


def test_unsigned_and_tampered_requests_are_refused():
    assert sigv4.verify("GET", "/ml-data", {"Host": "gw"}, access_key=KEY, secret_key=SECRET) == "AccessDenied"
    method, uri, headers = _signed_requests(SECRET, CALLS[2:3])[0]
    assert sigv4.verify(method, uri.replace("a%20b", "other"), headers, access_key=KEY, secret_key=SECRET) == (
        "SignatureDoesNotMatch"
    )
    assert sigv4.verify("PUT", uri, headers, access_key=KEY, secret_key=SECRET) == "SignatureDoesNotMatch"
    headers = {**headers, "Authorization": "AWS4-HMAC-SHA256 garbage"}
    assert sigv4.verify(method, uri, headers, access_key=KEY, secret_key=SECRET) == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    ("secret", "expires", "want"), [(SECRET, 3600, "ok"), ("wrong", 3600, "SignatureDoesNotMatch")]
)
def test_presigned_urls_are_verified(secret, expires, want):
    url = _client(secret).generate_presigned_url(
        "get_object", Params={"Bucket": "ml-models", "Key": "latest/MLmodel"}, ExpiresIn=expires
    )
    parts = urlsplit(url)
    got = sigv4.verify("GET", f"{parts.path}?{parts.query}", {"Host": parts.netloc}, access_key=KEY, secret_key=SECRET)
    assert got == want


def test_an_expired_presigned_url_is_refused(monkeypatch):
    from datetime import datetime, timedelta

    url = _client(SECRET).generate_presigned_url("get_object", Params={"Bucket": "ml-models", "Key": "k"}, ExpiresIn=60)
    parts = urlsplit(url)

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(seconds=120)

    monkeypatch.setattr(sigv4, "datetime", Later)
    got = sigv4.verify("GET", f"{parts.path}?{parts.query}", {"Host": parts.netloc}, access_key=KEY, secret_key=SECRET)
    assert got == "AccessDenied"
