"""SigV4 verification for the local stack's S3 emulator, which (unlike MinIO) accepts any signature.

The gateway asks this service about every S3 request before it proxies it
(nginx ``auth_request``: the request's method, URI and headers, never its
body). The signature is recomputed with botocore's own S3 signer and the
configured secret, so a wrong secret is refused as MinIO refuses it:
``SignatureDoesNotMatch``; another access key is ``InvalidAccessKeyId``; a
request with no signature is ``AccessDenied``. Header and query-string
(presigned URL) signatures are both verified. The body hash is taken from
``x-amz-content-sha256`` as signed; that the body matches it is not checked.

Run as ``python -m metro_e2e.stack.sigv4 --port P``; the credentials come
from ``METRO_SIGV4_ACCESS_KEY`` / ``METRO_SIGV4_SECRET_KEY`` (environment,
not arguments, so they stay out of process lists).
"""

from __future__ import annotations

import argparse
import hmac
import os
import re
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.auth import SIGV4_TIMESTAMP, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

OK = "ok"
DENIED = "AccessDenied"  # no signature, or an expired presigned URL
WRONG_KEY = "InvalidAccessKeyId"
BAD_SIGNATURE = "SignatureDoesNotMatch"
_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]+)$"
)
ORIGINAL_METHOD, ORIGINAL_URI, ORIGINAL_LENGTH = "X-Original-Method", "X-Original-URI", "X-Original-Content-Length"
PUBLIC_BUCKETS = "X-Public-Buckets"  # buckets whose anonymous reads are allowed (a bucket policy; tests break S3-4)


def verify(method: str, uri: str, headers: dict[str, str], *, access_key: str, secret_key: str) -> str:
    """``"ok"``, or the S3 error code MinIO would answer this request with."""
    lower = {k.lower(): v for k, v in headers.items()}
    query = dict(parse_qsl(urlsplit(uri).query, keep_blank_values=True))
    if "X-Amz-Signature" in query:
        return _verify_query(method, uri, lower, query, access_key=access_key, secret_key=secret_key)
    match = _HEADER.match(lower.get("authorization", "").strip())
    if not lower.get("authorization"):
        return DENIED
    if not match:
        return BAD_SIGNATURE
    key, scope = _credential(match["credential"])
    if key != access_key:
        return WRONG_KEY
    signed = {name: lower.get(name, "") for name in match["signed"].split(";")}
    request = AWSRequest(method=method, url=f"http://{lower.get('host', '')}{uri}", headers=signed)
    request.context["timestamp"] = lower.get("x-amz-date", "")
    signer = S3SigV4Auth(Credentials(key, secret_key), scope[2], scope[1])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return OK if hmac.compare_digest(expected, match["signature"]) else BAD_SIGNATURE


def _verify_query(method: str, uri: str, lower: dict, query: dict, *, access_key: str, secret_key: str) -> str:
    key, scope = _credential(query.get("X-Amz-Credential", ""))
    if key != access_key:
        return WRONG_KEY
    stamp = query.get("X-Amz-Date", "")
    try:
        issued = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
        if datetime.now(UTC) > issued + timedelta(seconds=int(query.get("X-Amz-Expires", "0"))):
            return DENIED
    except ValueError:
        return BAD_SIGNATURE
    parts = urlsplit(uri)
    unsigned = "&".join(p for p in parts.query.split("&") if not p.startswith("X-Amz-Signature="))
    signed = {name: lower.get(name, "") for name in query.get("X-Amz-SignedHeaders", "host").split(";")}
    request = AWSRequest(method=method, url=f"http://{lower.get('host', '')}{parts.path}?{unsigned}", headers=signed)
    request.context["timestamp"] = stamp
    signer = S3SigV4QueryAuth(Credentials(key, secret_key), scope[2], scope[1])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return OK if hmac.compare_digest(expected, query["X-Amz-Signature"]) else BAD_SIGNATURE


def _credential(text: str) -> tuple[str, list[str]]:
    """``<key>/<date>/<region>/<service>/aws4_request`` -> (key, [date, region, service])."""
    parts = unquote(text).split("/")
    if len(parts) < 5:
        return "", ["", "", "s3"]
    return "/".join(parts[:-4]), parts[-4:-1]


def serve(port: int, *, access_key: str, secret_key: str) -> ThreadingHTTPServer:
    """An HTTP server answering nginx ``auth_request`` subrequests: 204 when the signature holds, else 403 with
    the S3 error code in ``X-S3-Error``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming; nginx subrequests are GETs
            headers = dict(self.headers.items())
            if ORIGINAL_LENGTH in headers:  # the subrequest carries no body; the signed length is the original's
                headers["Content-Length"] = headers.pop(ORIGINAL_LENGTH)
            method, uri = headers.get(ORIGINAL_METHOD, "GET"), headers.get(ORIGINAL_URI, "/")
            verdict = verify(method, uri, headers, access_key=access_key, secret_key=secret_key)
            public = [b for b in headers.get(PUBLIC_BUCKETS, "").split(",") if b]
            bucket = urlsplit(uri).path.lstrip("/").split("/", 1)[0]
            if verdict == DENIED and method in ("GET", "HEAD") and bucket in public:
                verdict = OK  # an anonymous read of a public bucket
            self.send_response(204 if verdict == OK else 403)
            if verdict != OK:
                self.send_header("X-S3-Error", verdict)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SigV4 verifier for the local stack's gateway (nginx auth_request)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = serve(
        args.port,
        access_key=os.environ["METRO_SIGV4_ACCESS_KEY"],
        secret_key=os.environ["METRO_SIGV4_SECRET_KEY"],
    )
    print(f"sigv4 verifier on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
