"""S3 (MinIO) behind the gateway: signed access, the platform's buckets, an object's life, anonymous refusal, and
credentials other than the published defaults."""

from __future__ import annotations

import hashlib
import logging

from metro_e2e import promotion
from metro_e2e.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from metro_e2e.conformance.checks._common import fail_from, registers
from metro_e2e.conformance.context import NAMESPACE_ROOT, ClauseFailed, RunContext, Undecided
from metro_e2e.errors import MetroE2EError

log = logging.getLogger(__name__)


@registers("S3-1")
def check_s3_1(ctx: RunContext) -> str:
    try:
        buckets = ctx.storage.list_buckets()
    except MetroE2EError as exc:
        raise fail_from(exc, "a signed ListBuckets with the configured credentials to succeed") from None
    return f"ListBuckets at {ctx.config.s3_endpoint} returned {len(buckets)} bucket(s)"


@registers("S3-2")
def check_s3_2(ctx: RunContext) -> str:
    storage = ctx.storage
    missing = [b for b in (ctx.config.models_bucket, ctx.config.data_bucket) if not storage.bucket_exists(b)]
    if missing:
        raise ClauseFailed(
            f"buckets {ctx.config.models_bucket} and {ctx.config.data_bucket}",
            f"missing: {', '.join(missing)}",
            url=ctx.config.s3_endpoint,
        )
    return f"{ctx.config.models_bucket} and {ctx.config.data_bucket} exist"


MULTIPART_BYTES = 8 * 1024 * 1024 + 17


@registers("S3-3")
def check_s3_3(ctx: RunContext) -> str:
    storage = ctx.storage
    bucket, small_key, big_key = (
        ctx.config.data_bucket,
        ctx.namespace + "s3-3/small.bin",
        ctx.namespace + "s3-3/big.bin",
    )
    ctx.created.s3.append((bucket, ctx.namespace))
    small = b"metro-e2e " + ctx.run_id.encode()
    big = hashlib.sha256(small).digest() * (MULTIPART_BYTES // 32 + 1)
    try:
        storage.put_bytes(bucket, small_key, small)
        storage.put_multipart(bucket, big_key, big)
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
        raise fail_from(exc, "put, multipart upload, read, list and delete to succeed") from None
    return f"put {len(small)} B and multipart {len(big) / 2**20:.1f} MiB under s3://{bucket}/{ctx.namespace}, read back, listed, deleted"


S3_DENIALS = ("AccessDenied", "AllAccessDisabled")  # what S3 (MinIO, AWS) answers an unsigned request it refuses


@registers("S3-4")
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
            raise fail_from(exc, f"a signed listing of {bucket} to find objects to read") from None
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


@registers("S3-5")
def check_s3_5(ctx: RunContext) -> str:
    if (ctx.config.s3_access_key.reveal(), ctx.config.s3_secret_key.reveal()) == (
        DEFAULT_ACCESS_KEY,
        DEFAULT_SECRET_KEY,
    ):
        raise ClauseFailed(
            "credentials other than the published defaults", "the published default credentials are in use"
        )
    return "the credentials in use are not the published defaults"
