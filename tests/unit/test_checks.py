"""Each check's failure branches against an HTTP-level fake of the platform (pytest-httpserver on loopback).

No stack and no subprocess: the fake answers exactly what a broken platform would, and each test asserts the
verdict ``engine.execute`` gives and the cause named in its detail. A check is trusted only where a test here
(or a breakage test in ``tests/integration``) shows it failing.
"""

from __future__ import annotations

import json
import socket

import pytest
from werkzeug import Response

from metro_e2e.config import load_config
from metro_e2e.conformance import engine
from metro_e2e.conformance.catalogue import BY_ID
from metro_e2e.conformance.context import Options, RunContext

pytest_plugins = ["pytest_httpserver"]

S3_DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>'
)


@pytest.fixture
def platform(httpserver):
    """A run context whose gateway URL is the fake's, with short timeouts."""
    url = httpserver.url_for("/").rstrip("/")
    environ = {"METRO_CONNECT_TIMEOUT": "1", "METRO_READ_TIMEOUT": "2"}
    return RunContext(config=load_config(cli={"url": url}, environ=environ), options=Options())


def run(ctx: RunContext, clause_id: str) -> engine.ClauseResult:
    return engine.execute(BY_ID[clause_id], ctx)


# -- GW-1 ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 501, 502, 503, 504])
def test_gw_1_fails_on_any_5xx(platform, httpserver, status):
    httpserver.expect_request("/").respond_with_data("upstream trouble", status=status)
    result = run(platform, "GW-1")
    assert result.verdict == "failed" and f"HTTP {status}" in result.detail


def test_gw_1_passes_on_s3s_own_denial_at_the_root(platform, httpserver):
    httpserver.expect_request("/").respond_with_data(S3_DENIED, status=403, content_type="application/xml")
    assert run(platform, "GW-1").verdict == "passed"


def test_gw_1_fails_when_nothing_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    ctx = RunContext(config=load_config(cli={"url": f"http://127.0.0.1:{port}"}, environ={}))
    result = run(ctx, "GW-1")
    assert result.verdict == "failed" and "connection refused" in result.detail and "METRO_URL" in result.detail


# -- MLF-2 --------------------------------------------------------------------------------------------------------------
UI = '<!doctype html><html><head><script src="static-files/static/js/main.js"></script>'
UI += '<link href="static-files/static/css/main.css" rel="stylesheet"></head><body></body></html>'


def _ui(httpserver, js: tuple[str, str], css: tuple[str, str] = ("body{}", "text/css")) -> None:
    httpserver.expect_request("/mlflow/").respond_with_data(UI, content_type="text/html")
    httpserver.expect_request("/mlflow/static-files/static/js/main.js").respond_with_data(js[0], content_type=js[1])
    httpserver.expect_request("/mlflow/static-files/static/css/main.css").respond_with_data(css[0], content_type=css[1])


def test_mlf_2_passes_when_scripts_and_styles_load(platform, httpserver):
    _ui(httpserver, ("console.log(1)", "application/javascript"))
    result = run(platform, "MLF-2")
    assert result.verdict == "passed", result.detail


def test_mlf_2_fails_when_every_path_answers_the_uis_html(platform, httpserver):
    """An ingress that answers index.html for every path: 200 for each asset, and no browser can run the UI."""
    _ui(httpserver, (UI, "text/html"), (UI, "text/html"))
    result = run(platform, "MLF-2")
    assert result.verdict == "failed" and "main.js" in result.detail and "text/html" in result.detail


def test_mlf_2_fails_when_a_script_has_the_wrong_content_type(platform, httpserver):
    _ui(httpserver, ("console.log(1)", "text/plain"))
    result = run(platform, "MLF-2")
    assert result.verdict == "failed" and "main.js" in result.detail and "text/plain" in result.detail


def test_mlf_2_fails_when_an_asset_is_missing(platform, httpserver):
    httpserver.expect_request("/mlflow/").respond_with_data(UI, content_type="text/html")
    result = run(platform, "MLF-2")
    assert result.verdict == "failed" and "HTTP 500" in result.detail


# -- S3-4 ---------------------------------------------------------------------------------------------------------------
def _list_result(bucket: str, keys: list[str]) -> str:
    contents = "".join(f"<Contents><Key>{k}</Key><Size>1</Size><ETag>&quot;x&quot;</ETag></Contents>" for k in keys)
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{bucket}</Name><Prefix></Prefix><KeyCount>{len(keys)}</KeyCount><MaxKeys>1</MaxKeys>"
        f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    )


def _s3(httpserver, anonymous: tuple[int, str, str]) -> list[str]:
    """Signed requests list one existing object per bucket; anonymous ones get ``anonymous`` (status, body, type)."""
    seen: list[str] = []

    def handler(request):
        bucket = request.path.strip("/").split("/", 1)[0]
        signed = "Authorization" in request.headers
        seen.append(f"{'signed' if signed else 'anonymous'} {request.method} {request.full_path}")
        if signed:
            return Response(_list_result(bucket, [f"{bucket}-object"]), 200, content_type="application/xml")
        status, body, content_type = anonymous
        return Response(body, status, content_type=content_type)

    httpserver.expect_request("/ml-models").respond_with_handler(handler)
    httpserver.expect_request("/ml-data").respond_with_handler(handler)
    httpserver.expect_request("/ml-models/ml-models-object").respond_with_handler(handler)
    httpserver.expect_request("/ml-data/ml-data-object").respond_with_handler(handler)
    return seen


def test_s3_4_passes_only_on_s3s_own_denial_of_existing_objects(platform, httpserver):
    seen = _s3(httpserver, (403, S3_DENIED, "application/xml"))
    result = run(platform, "S3-4")
    assert result.verdict == "passed", result.detail
    assert "anonymous GET /ml-models/ml-models-object?" in " ".join(seen)  # a read of an object that exists
    assert "anonymous GET /ml-data/ml-data-object?" in " ".join(seen)


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (400, "<Error><Code>InvalidRequest</Code></Error>", "HTTP 400"),
        (500, "<Error><Code>InternalError</Code></Error>", "HTTP 500"),
        (501, "<Error><Code>NotImplemented</Code></Error>", "HTTP 501"),
        (403, "<html><body>Forbidden by the proxy</body></html>", "not S3's own denial"),
        (404, "<Error><Code>NoSuchKey</Code></Error>", "NoSuchKey"),
    ],
)
def test_s3_4_fails_on_any_answer_but_s3s_denial(platform, httpserver, status, body, cause):
    _s3(httpserver, (status, body, "application/xml" if body.startswith("<Error") else "text/html"))
    result = run(platform, "S3-4")
    assert result.verdict == "failed" and cause in result.detail, result.detail


def test_s3_4_fails_when_anonymous_requests_are_answered(platform, httpserver):
    _s3(httpserver, (200, _list_result("ml-models", ["x"]), "application/xml"))
    result = run(platform, "S3-4")
    assert result.verdict == "failed" and "allowed: list ml-models" in result.detail


# -- verdicts are complete ---------------------------------------------------------------------------------------------
def test_a_check_that_crashes_is_an_error_not_a_failure_or_a_pass(platform, monkeypatch):
    from metro_e2e.conformance import checks

    def crash(ctx):
        raise TypeError("unsupported operand")

    monkeypatch.setitem(checks.CHECKS, "S3-5", crash)
    result = run(platform, "S3-5")
    assert result.verdict == "error" and "TypeError: unsupported operand" in result.detail
    assert "the check itself crashed" in result.detail


def test_a_check_past_its_budget_fails_naming_the_budget(platform, monkeypatch):
    import time

    from metro_e2e.conformance import checks

    monkeypatch.setitem(checks.CHECKS, "S3-5", lambda ctx: time.sleep(30))
    monkeypatch.setattr(engine, "budget_s", lambda clause, ctx: 0.5)
    started = time.monotonic()
    result = run(platform, "S3-5")
    assert time.monotonic() - started < 5
    assert result.verdict == "warned" and "budget of 0.5 s" in result.detail  # S3-5 is advisory


def test_s3_4_json_detail_never_names_the_secret(platform, httpserver):
    _s3(httpserver, (200, _list_result("ml-models", ["x"]), "application/xml"))
    result = run(platform, "S3-4")
    assert platform.config.s3_secret_key.reveal() not in json.dumps(result.as_dict())
