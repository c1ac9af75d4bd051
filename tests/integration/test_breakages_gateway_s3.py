"""The gateway and S3 clauses fail on each realistic way their promise breaks, and only they fail.

The seeded stack (``SeededStacks``); each test breaks it (a gateway fault, an option, a deleted bucket), runs
``metro-e2e check`` and repairs it. Each asserts the exact outcome (``checking.expect_outcome``).
"""

from __future__ import annotations

import json

import pytest

from metro_e2e import data
from metro_e2e.stack.gateway import Fault
from metro_e2e.storage import Storage

from .checking import broken_gateway, check, detail, expect_outcome, verdicts

S3_XML = "application/xml"
EMPTY_LISTING = (
    '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<Name>ml-data</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>false</IsTruncated></ListBucketResult>"
)
DELETED_NOTHING = '<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>'


def _check(stack, tmp_path, *args, env=None):
    return check(tmp_path, "--url", stack.gateway_url, "--skip", "KFP", *args, env=env)


@pytest.mark.parametrize("status", [500, 501])
def test_gateway_answering_a_server_error_to_everything_fails_gw_1(metro_seeded_stack, tmp_path, status):
    with broken_gateway(metro_seeded_stack, faults=(Fault(path="^/", status=status, why="every route broken"),)):
        code, report, _ = _check(metro_seeded_stack, tmp_path)
    assert code == 1
    expect_outcome(report, {"GW-1": rf"the gateway to answer without a server error; got HTTP {status}"})


def test_wrong_access_key_fails_s3_1(metro_seeded_stack, tmp_path):
    env = {"METRO_S3_ACCESS_KEY": "not-minio", "METRO_S3_SECRET_KEY": "wrong-secret-7"}
    code, report, _ = _check(metro_seeded_stack, tmp_path, env=env)
    assert code == 1
    expect_outcome(report, {"S3-1": r"refused the credentials \(InvalidAccessKeyId\).*METRO_S3_ACCESS_KEY"})
    assert "wrong-secret-7" not in json.dumps(report)


def test_wrong_secret_with_the_right_key_fails_s3_1(metro_seeded_stack, tmp_path):
    """moto accepts any signature; the local stack's gateway verifies SigV4 with the secret, as MinIO does."""
    code, report, out = _check(metro_seeded_stack, tmp_path, env={"METRO_S3_SECRET_KEY": "wrong-secret-8"})
    assert code == 1
    expect_outcome(report, {"S3-1": r"refused the credentials \(SignatureDoesNotMatch\).*METRO_S3_SECRET_KEY"})
    assert "wrong-secret-8" not in json.dumps(report) + out


def test_missing_bucket_fails_s3_2(metro_seeded_stack, tmp_path):
    storage = Storage(metro_seeded_stack.config())
    dataset = storage.get_bytes("ml-data", "iris/iris.csv")
    storage.delete_prefix("ml-data", "")
    storage.client.delete_bucket(Bucket="ml-data")
    try:
        code, report, _ = _check(metro_seeded_stack, tmp_path)
    finally:
        storage.create_bucket("ml-data")
        storage.put_bytes("ml-data", "iris/iris.csv", dataset)
    assert code == 1
    expect_outcome(report, {"S3-2": r"missing: ml-data"})


def _namespace_leftovers(stack) -> None:
    """Remove what a check whose deletes were broken left in its namespace."""
    storage = Storage(stack.config())
    for bucket in ("ml-data", "ml-models"):
        storage.delete_prefix(bucket, "metro-e2e/")


S3_3_BREAKAGES = {
    "unreadable": (
        Fault(path=r"^/ml-data/metro-e2e/", status=500, body="broken", methods=("GET",), why="reads fail"),
        {"S3-3": r"S3 answered 500|InternalError|answered 500"},
    ),
    "corrupted": (
        Fault(
            path=r"^/ml-data/metro-e2e/[^/]+/s3-3/small\.bin$",
            status=200,
            body="corrupted",
            methods=("GET",),
            content_type="application/octet-stream",
            why="reads return other bytes",
        ),
        {"S3-3": r"the single put to read back byte-identical; got different bytes"},
    ),
    "listing-misses-objects": (
        Fault(path=r"^/ml-data$", status=200, body=EMPTY_LISTING, methods=("GET",), content_type=S3_XML, why="stale"),
        # a listing answered without looking at the request is also answered without credentials
        {"S3-3": r"the listing to show .*small\.bin.*; got \[\]", "S3-4": r"allowed: list ml-data"},
    ),
    "delete-deletes-nothing": (
        Fault(
            path=r"^/ml-data$", status=200, body=DELETED_NOTHING, methods=("POST",), content_type=S3_XML, why="no-op"
        ),
        {"S3-3": r"deleted objects to disappear from the listing; got still listed"},
    ),
}


@pytest.mark.parametrize("breakage", list(S3_3_BREAKAGES))
def test_s3_object_lifecycle_breakages_fail_s3_3(metro_seeded_stack, tmp_path, breakage):
    fault, failed = S3_3_BREAKAGES[breakage]
    try:
        with broken_gateway(metro_seeded_stack, faults=(fault,)):
            code, report, _ = _check(metro_seeded_stack, tmp_path)
    finally:
        _namespace_leftovers(metro_seeded_stack)
    assert code == 1
    expect_outcome(report, failed)
    if breakage == "delete-deletes-nothing":  # the run's own cleanup could not delete either, and says so
        assert any("s3://ml-data/metro-e2e/" in item for item in report["leftovers"]), report["leftovers"]


DOWNLOAD_POLICY = {  # what `mc anonymous set download ml-models` sets
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": ["*"]},
            "Action": ["s3:GetObject"],
            "Resource": ["arn:aws:s3:::ml-models/*"],
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": ["*"]},
            "Action": ["s3:ListBucket"],
            "Resource": ["arn:aws:s3:::ml-models"],
        },
    ],
}


def test_a_bucket_open_to_anonymous_reads_fails_s3_4(metro_seeded_stack, tmp_path):
    """As `mc anonymous set download ml-models` leaves it: unsigned reads of ml-models answered, writes denied.

    moto applies the bucket policy to objects; the gateway's signature check (which stands in for MinIO's) is told
    the bucket is public, as MinIO reads its policy."""
    storage = Storage(metro_seeded_stack.config())
    storage.client.put_bucket_policy(Bucket="ml-models", Policy=json.dumps(DOWNLOAD_POLICY))
    try:
        with broken_gateway(metro_seeded_stack, public_buckets=("ml-models",)):
            code, report, _ = _check(metro_seeded_stack, tmp_path)
    finally:
        storage.client.delete_bucket_policy(Bucket="ml-models")
    assert code == 1
    expect_outcome(report, {"S3-4": r"anonymous requests to be refused; got allowed: list ml-models \(HTTP 200\)"})
    assert "read ml-models/" in detail(report, "S3-4")  # an object that exists was read without credentials
    assert "ml-data" not in detail(report, "S3-4").split("got", 1)[1]  # ml-data still refuses them


def test_published_default_credentials_warn_s3_5_and_fail_it_under_strict(metro_seeded_stack, tmp_path):
    code, report, _ = _check(metro_seeded_stack, tmp_path, "--skip", "MLF", "SRV", "PRM", "S3-3")
    assert code == 0 and verdicts(report)["S3-5"] == "warned"
    code, report, _ = _check(metro_seeded_stack, tmp_path, "--skip", "MLF", "SRV", "PRM", "S3-3", "--strict")
    assert code == 1
    expect_outcome(report, {"S3-5": r"the published default credentials are in use"}, warned=())


def test_dataset_still_there_after_the_module(metro_seeded_stack):
    """The breakages above repaired what they broke (later modules and the soak rely on the seeded data)."""
    storage = Storage(metro_seeded_stack.config())
    assert data.read_dataset(storage, bucket="ml-data", key="iris/iris.csv").shape[0] == 150
    assert storage.list_keys("ml-data", "metro-e2e/") == []
