"""S3 (MinIO) behind the gateway. Its clauses (CONTRACT.md), each with the breakages proven to fail it; its checks are in
``conformance/checks/s3.py``."""

from metro_e2e.conformance.catalogue._model import (
    ADVISORY,
    BAD_INPUT,
    BUDGET,
    CORE,
    FAULT,
    GW_S3,
    READ,
    UNIT,
    WRITE,
    Budget,
    breakage,
    declare,
    stops_answering,
)

CLAUSES = (
    declare(
        "S3-1",
        CORE,
        READ,
        "GW-1",
        "The S3 API is served at the gateway root; a SigV4-signed ListBuckets with the "
        "configured credentials succeeds.",
        Budget(10, 3),
        slug="signed_list_buckets",
        quick=True,
        breakages=(
            breakage(
                "missing permission", "an access key S3 does not know", f"{GW_S3}test_wrong_access_key_fails_s3_1"
            ),
            breakage(
                "missing permission",
                "the right access key with a wrong secret (SignatureDoesNotMatch)",
                f"{GW_S3}test_wrong_secret_with_the_right_key_fails_s3_1",
            ),
            breakage(
                "wrong content",
                "a web page, not S3, answers at the gateway root",
                f"{UNIT}test_s3_1_fails_on_a_web_page_at_the_root",
                f"{BAD_INPUT}[not-a-metro-gateway]",
            ),
            breakage("crash", "S3 killed while the check runs (the gateway answers 502)", f"{FAULT}[s3-killed]"),
            breakage("timeout", "S3 frozen while the check runs", f"{FAULT}[s3-frozen]"),
        ),
    ),
    declare(
        "S3-2",
        CORE,
        READ,
        "S3-1",
        "Buckets `ml-models` and `ml-data` exist.",
        Budget(10, 3),
        slug="platform_buckets_exist",
        breakages=(
            breakage(
                "wrong object",
                "the bucket ml-data does not exist",
                f"{GW_S3}test_missing_bucket_fails_s3_2",
                f"{UNIT}test_s3_2_fails_on_a_missing_bucket_and_on_a_server_error",
            ),
            *stops_answering("s3"),
        ),
    ),
    declare(
        "S3-3",
        CORE,
        WRITE,
        "S3-2",
        "An object written under the namespace in `ml-data` reads back byte-identical "
        "(single put and a multipart upload of at least 8 MiB), lists, and deletes.",
        Budget(60, 3),
        slug="write_read_list_delete",
        breakages=(
            breakage(
                "wrong status",
                "reads of new objects answer 500",
                f"{GW_S3}test_s3_object_lifecycle_breakages_fail_s3_3[unreadable]",
            ),
            breakage(
                "wrong content",
                "reads return other bytes than were written",
                f"{GW_S3}test_s3_object_lifecycle_breakages_fail_s3_3[corrupted]",
            ),
            breakage(
                "partial state",
                "a listing that misses objects just written",
                f"{GW_S3}test_s3_object_lifecycle_breakages_fail_s3_3[listing-misses-objects]",
            ),
            breakage(
                "partial state",
                "a delete that is acknowledged and deletes nothing",
                f"{GW_S3}test_s3_object_lifecycle_breakages_fail_s3_3[delete-deletes-nothing]",
            ),
        ),
    ),
    declare(
        "S3-4",
        CORE,
        READ,
        "S3-1",
        "An unsigned (anonymous) request cannot list or read `ml-models` or `ml-data`.",
        Budget(15, 3),
        slug="anonymous_refused",
        breakages=(
            breakage(
                "too permissive",
                "ml-models open to anonymous reads (`mc anonymous set download`)",
                f"{GW_S3}test_a_bucket_open_to_anonymous_reads_fails_s3_4",
            ),
            breakage(
                "wrong status",
                "anonymous requests answered 400, 500 or 501, or a proxy's 403 page, not S3's own denial",
                f"{UNIT}test_s3_4_fails_on_any_answer_but_s3s_denial",
            ),
            breakage(
                "wrong object",
                "anonymous reads reach the bucket (NoSuchKey)",
                f"{UNIT}test_s3_4_fails_on_any_answer_but_s3s_denial",
            ),
            breakage(
                "wrong status",
                "bucket requests answer 500, hang or are refused",
                f"{BUDGET}[s3-5xx]",
                f"{BUDGET}[s3-hang]",
                f"{BUDGET}[s3-refused]",
            ),
        ),
    ),
    declare(
        "S3-5",
        ADVISORY,
        READ,
        "S3-1",
        "The credentials in use are not the published defaults `minio` / `minio123`.",
        Budget(5, 0),
        slug="not_default_credentials",
        breakages=(
            breakage(
                "too permissive",
                "the published default credentials minio / minio123 are in use",
                f"{GW_S3}test_published_default_credentials_warn_s3_5_and_fail_it_under_strict",
            ),
        ),
    ),
)
