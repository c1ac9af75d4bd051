"""S3 (MinIO) access for the workflow: one client per config, bounded timeouts, clear errors.

Every call goes through ``Storage``; boto3/botocore names stay inside this
module. botocore failures become ``EndpointUnreachable``, ``AuthError`` or
``StorageError`` naming the endpoint, bucket and key involved.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import boto3
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
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
# a 5xx that no S3 server produced itself (an S3 throttle such as SlowDown is not "unreachable")
_GATEWAY_CODES = {"BadGateway", "GatewayTimeout", "ServiceUnavailable"}


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: key, size in bytes and ETag (quotes stripped)."""

    key: str
    size: int
    etag: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
            config=BotoConfig(
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
                retries={"total_max_attempts": 3, "mode": "standard"},
                signature_version="s3v4",
                s3={"addressing_style": "path"},
            ),
        )

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
        where = f"s3://{bucket}/{key}" if bucket and key else f"s3://{bucket}" if bucket else "S3"
        endpoint = f"S3 endpoint {self.endpoint} [{self.config.source_of('s3_endpoint')}]"
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
            why = "did not answer"
            if isinstance(exc, ReadTimeoutError):
                why = "connected, but gave " + no_answer_within(self.config.read_timeout)
            elif isinstance(exc, ConnectTimeoutError):
                why = "gave " + no_connection_within(self.config.connect_timeout)
            return EndpointUnreachable(
                f"cannot {action} {where}: {endpoint} {why}",
                url=self.endpoint,
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
                    url=self.endpoint,
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
            return StorageError(f"cannot {action} {where}: S3 answered {code or status}: {self.config.mask(str(exc))}")
        return StorageError(f"cannot {action} {where}: {self.config.mask(str(exc))}")

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

    def create_bucket(self, bucket: str) -> None:
        with self.errors("create bucket", bucket=bucket):
            self.client.create_bucket(Bucket=bucket)

    def put_bytes(self, bucket: str, key: str, data: bytes, *, metadata: dict[str, str] | None = None) -> None:
        with self.errors("write", bucket=bucket, key=key):
            self.client.put_object(Bucket=bucket, Key=key, Body=data, Metadata=metadata or {})

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
        try:
            with self.errors("check", bucket=bucket):
                self.client.head_bucket(Bucket=bucket)
        except StorageError:
            return False
        return True
