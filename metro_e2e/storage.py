"""S3 (MinIO) access for the workflow: one client per config, bounded timeouts, clear errors.

Every call goes through ``Storage``; boto3/botocore names stay inside this
module. botocore failures become ``EndpointUnreachable``, ``AuthError`` or
``StorageError`` naming the endpoint, bucket and key involved.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import boto3
import botocore.session
from boto3.exceptions import Boto3Error
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from metro_e2e._http import no_answer_within, no_connection_within
from metro_e2e.config import MetroConfig
from metro_e2e.errors import AuthError, EndpointUnreachable, MetroE2EError, StorageError

log = logging.getLogger(__name__)

DELETE_BATCH = 1000  # the S3 DeleteObjects limit
MULTIPART_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
# a 5xx that no S3 server produced itself (an S3 throttle such as SlowDown is not "unreachable")
_GATEWAY_CODES = {"BadGateway", "GatewayTimeout", "ServiceUnavailable"}


@dataclass(frozen=True)
class Answer:
    """What S3 answered one request: the HTTP status and, for an error, S3's error code (None when the body
    carried none, e.g. a proxy's HTML page)."""

    status: int
    code: str | None


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: key, size in bytes and ETag (quotes stripped)."""

    key: str
    size: int
    etag: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


S3_ATTEMPTS = 3  # botocore's standard retry mode: throttles, 5xx and connection errors, jittered backoff <= 20 s


def _boto_config(config: MetroConfig, *, attempts: int = S3_ATTEMPTS, signed: bool = True) -> BotoConfig:
    return BotoConfig(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        signature_version="s3v4" if signed else UNSIGNED,
        s3={"addressing_style": "path"},
    )


@contextlib.contextmanager
def client_policy(config: MetroConfig) -> Iterator[None]:
    """boto3 clients that other libraries create in the block (MLflow's artifact client) get the suite's
    timeouts and retries instead of botocore's 60 s ones; their own explicit settings still win."""
    session = botocore.session.get_session()
    session.set_default_client_config(_boto_config(config))
    previous = boto3.DEFAULT_SESSION
    boto3.setup_default_session(botocore_session=session)
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = previous


def translate(
    exc: Exception, config: MetroConfig, *, action: str, bucket: str | None = None, key: str | None = None
) -> MetroE2EError:
    """The metro-e2e error for a botocore exception raised while doing ``action`` against ``config``'s S3."""
    where = f"s3://{bucket}/{key}" if bucket and key else f"s3://{bucket}" if bucket else "S3"
    endpoint = f"S3 endpoint {config.s3_endpoint} [{config.source_of('s3_endpoint')}]"
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        why = "did not answer"
        if isinstance(exc, ReadTimeoutError):
            why = "connected, but gave " + no_answer_within(config.read_timeout)
        elif isinstance(exc, ConnectTimeoutError):
            why = "gave " + no_connection_within(config.connect_timeout)
        return EndpointUnreachable(
            f"cannot {action} {where}: {endpoint} {why}",
            url=config.s3_endpoint,
            hint="check METRO_URL / METRO_S3_ENDPOINT and that the gateway is reachable",
        )
    if isinstance(exc, NoCredentialsError):
        return AuthError(
            f"cannot {action} {where}: no S3 credentials", hint="set METRO_S3_ACCESS_KEY and METRO_S3_SECRET_KEY"
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in (502, 503, 504) and (not code or code.isdigit() or code in _GATEWAY_CODES):
            return EndpointUnreachable(
                f"cannot {action} {where}: the gateway at {endpoint} answered {status}: the S3 service behind it "
                "is not answering",
                url=config.s3_endpoint,
                hint="check the MinIO pod (kubectl get pods -n kubeflow) or the local stack's S3 log",
            )
        if code in _AUTH_CODES or status == 403:
            return AuthError(
                f"cannot {action} {where}: {endpoint} refused the credentials ({code or status})",
                hint="check METRO_S3_ACCESS_KEY and METRO_S3_SECRET_KEY",
            )
        if code in _MISSING_BUCKET:
            return StorageError(
                f"cannot {action} {where}: bucket {bucket!r} does not exist at {endpoint}",
                hint="create it as the platform install does, or set METRO_DATA_BUCKET / METRO_MODELS_BUCKET",
            )
        if code in _MISSING_KEY or status == 404:
            return StorageError(
                f"cannot {action} {where}: no such object at {endpoint}",
                hint="check the key (METRO_DATA_KEY / --data_key for the dataset) or write the object first "
                "(the upload_data step uploads the dataset)",
            )
        return StorageError(f"cannot {action} {where}: S3 answered {code or status}: {config.mask(str(exc))}")
    return StorageError(f"cannot {action} {where}: {config.mask(str(exc))}")


def s3_failure(exc: BaseException, config: MetroConfig, *, action: str) -> MetroE2EError | None:
    """The metro-e2e error for an S3 failure raised inside another library (MLflow's artifact uploads wrap
    botocore's error in boto3's ``S3UploadFailedError``); None when ``exc`` is not one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ClientError, BotoCoreError)):
            return translate(seen, config, action=action)
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, Boto3Error):
        return StorageError(f"cannot {action}: {config.mask(str(exc))}")
    return None


class Storage:
    """S3 operations against the endpoint and credentials of one ``MetroConfig``."""

    def __init__(self, config: MetroConfig, *, client=None) -> None:
        self.config = config
        self.endpoint = config.s3_endpoint
        self.client = client or boto3.client(
            "s3",
            endpoint_url=config.s3_endpoint,
            aws_access_key_id=config.s3_access_key.reveal(),
            aws_secret_access_key=config.s3_secret_key.reveal(),
            region_name=config.s3_region,
            config=_boto_config(config),
        )

    def anonymous(self) -> Storage:
        """The same endpoint with unsigned requests and no retries: what a caller without credentials gets."""
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.config.s3_region,
            config=_boto_config(self.config, attempts=1, signed=False),
        )
        return Storage(self.config, client=client)

    @contextlib.contextmanager
    def errors(self, action: str, *, bucket: str | None = None, key: str | None = None) -> Iterator[None]:
        """Translate botocore failures inside the block into metro-e2e errors."""
        try:
            yield
        except MetroE2EError:
            raise
        except (ClientError, BotoCoreError) as exc:
            raise self.translate(exc, action=action, bucket=bucket, key=key) from exc

    def translate(
        self, exc: Exception, *, action: str, bucket: str | None = None, key: str | None = None
    ) -> MetroE2EError:
        """The metro-e2e error for a botocore exception raised while doing ``action``."""
        return translate(exc, self.config, action=action, bucket=bucket, key=key)

    def list_buckets(self) -> list[str]:
        with self.errors("list buckets"):
            answer = self.client.list_buckets()
        if "Buckets" not in answer and "Owner" not in answer:  # botocore parses any 200 body, even a web page
            content_type = answer["ResponseMetadata"].get("HTTPHeaders", {}).get("content-type", "no content type")
            raise StorageError(
                f"S3 endpoint {self.config.s3_endpoint} [{self.config.source_of('s3_endpoint')}] answered "
                f"ListBuckets with {content_type}, not an S3 bucket list",
                hint="check METRO_URL / METRO_S3_ENDPOINT: the gateway must send other paths to MinIO",
            )
        return [b["Name"] for b in answer.get("Buckets", [])]

    def answer(self, operation: str, **params) -> Answer:
        """Send one request and return its status and error code instead of raising (for checks that expect a
        refusal). A request that got no answer at all still raises ``EndpointUnreachable``."""
        try:
            out = getattr(self.client, operation)(**params)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = str(exc.response.get("Error", {}).get("Code") or "")
            return Answer(int(status), None if not code or code.isdigit() else code)
        except BotoCoreError as exc:
            raise self.translate(exc, action=operation.replace("_", " "), bucket=params.get("Bucket")) from exc
        if hasattr(out.get("Body"), "close"):
            out["Body"].close()
        return Answer(int(out["ResponseMetadata"]["HTTPStatusCode"]), None)

    def first_key(self, bucket: str, prefix: str = "") -> str | None:
        """One key under ``prefix`` (the first S3 lists), or None when there is none."""
        with self.errors("list", bucket=bucket, key=prefix or None):
            page = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        contents = page.get("Contents") or []
        return contents[0]["Key"] if contents else None

    def top_level(self, bucket: str) -> tuple[list[str], list[str]]:
        """The keys at the top of ``bucket`` and its top-level prefixes (first page of a ``/``-delimited listing)."""
        with self.errors("list", bucket=bucket):
            page = self.client.list_objects_v2(Bucket=bucket, Delimiter="/", MaxKeys=1000)
        keys = [o["Key"] for o in page.get("Contents") or []]
        return keys, [p["Prefix"] for p in page.get("CommonPrefixes") or []]

    def create_bucket(self, bucket: str) -> None:
        with self.errors("create bucket", bucket=bucket):
            self.client.create_bucket(Bucket=bucket)

    def put_bytes(self, bucket: str, key: str, data: bytes, *, metadata: dict[str, str] | None = None) -> None:
        with self.errors("write", bucket=bucket, key=key):
            self.client.put_object(Bucket=bucket, Key=key, Body=data, Metadata=metadata or {})

    def put_multipart(self, bucket: str, key: str, data: bytes, *, part_size: int = MULTIPART_PART_BYTES) -> None:
        """Write ``data`` as a multipart upload of ``part_size`` parts (S3's minimum part is 5 MiB)."""
        from boto3.s3.transfer import TransferConfig

        with self.errors("multipart upload", bucket=bucket, key=key):
            self.client.upload_fileobj(
                io.BytesIO(data),
                bucket,
                key,
                Config=TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size),
            )

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self.errors("read", bucket=bucket, key=key):
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def get_bytes_or_none(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or None when the key does not exist (any other failure raises)."""
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_KEY:
                return None
            raise self.translate(exc, action="read", bucket=bucket, key=key) from exc
        except BotoCoreError as exc:
            raise self.translate(exc, action="read", bucket=bucket, key=key) from exc

    def copy(self, bucket: str, src_key: str, dst_key: str) -> None:
        """Server-side copy inside one bucket (metadata is copied with the object)."""
        with self.errors("copy", bucket=bucket, key=src_key):
            self.client.copy_object(Bucket=bucket, Key=dst_key, CopySource={"Bucket": bucket, "Key": src_key})

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, following continuation tokens past 1,000 keys."""
        with self.errors("list", bucket=bucket, key=prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(obj["Key"], int(obj["Size"]), str(obj.get("ETag", "")).strip('"'))

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return [o.key for o in self.list_objects(bucket, prefix)]

    def delete_keys(self, bucket: str, keys: Iterable[str]) -> int:
        """Delete ``keys`` in batches of 1,000; raise if S3 reports any key it could not delete."""
        keys = list(keys)
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            with self.errors("delete from", bucket=bucket, key=batch[0]):
                answer = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            failed = answer.get("Errors", [])
            if failed:
                first = failed[0]
                raise StorageError(
                    f"could not delete {len(failed)} object(s) from s3://{bucket}, "
                    f"first {first.get('Key')!r}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                )
        return len(keys)

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        return self.delete_keys(bucket, self.list_keys(bucket, prefix))

    def bucket_exists(self, bucket: str) -> bool:
        """Whether ``bucket`` exists; a refusal or a server error is raised, not taken for "no"."""
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or str(exc.response.get("Error", {}).get("Code")) in _MISSING_BUCKET:
                return False
            raise self.translate(exc, action="check", bucket=bucket) from exc
        except BotoCoreError as exc:
            raise self.translate(exc, action="check", bucket=bucket) from exc
        return True
