"""Each check's failure branches against an HTTP-level fake of the platform (pytest-httpserver on loopback).

No stack and no subprocess: the fake answers exactly what a broken platform would, and each test asserts the
verdict ``engine.execute`` gives and the cause named in its detail. A check is trusted only where a test here
(or a breakage test in ``tests/integration``) shows it failing.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket

import pytest
from werkzeug import Response

from metro_e2e.config import load_config
from metro_e2e.conformance import engine
from metro_e2e.conformance.catalogue import BY_ID
from metro_e2e.conformance.context import RunContext, Version
from metro_e2e.conformance.options import Options

pytest_plugins = ["pytest_httpserver"]

S3_XML = "application/xml"
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
    httpserver.expect_request("/mlflow/static-files/static/js/main.js").respond_with_data("no", status=404)
    result = run(platform, "MLF-2")
    assert result.verdict == "failed" and "main.js -> HTTP 404" in result.detail


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

    for path in ("/ml-models", "/ml-data", "/ml-models/ml-models-object", "/ml-data/ml-data-object"):
        httpserver.expect_request(path).respond_with_handler(handler)
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


def _list_with_prefixes(bucket: str, prefixes: list[str]) -> str:
    common = "".join(f"<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>" for p in prefixes)
    return _list_result(bucket, []).replace("</ListBucketResult>", common + "</ListBucketResult>")


def test_s3_4_fails_when_one_prefix_is_open_to_anonymous_reads(platform, httpserver):
    """`mc anonymous set download minio/ml-models/latest`: the first listed key is denied, latest/ is public."""

    def handler(request):
        prefix = request.args.get("prefix", "")
        if "Authorization" in request.headers:  # signed: the bucket's layout
            if request.args.get("delimiter") == "/":
                return Response(_list_with_prefixes("ml-models", ["1/", "latest/"]), 200, content_type=S3_XML)
            key = {"1/": "1/run/MLmodel", "latest/": "latest/MLmodel"}.get(prefix)
            return Response(_list_result("ml-models", [key] if key else []), 200, content_type=S3_XML)
        if request.path.startswith("/ml-models/latest/") or prefix == "latest/":
            body = "model" if request.path != "/ml-models" else _list_result("ml-models", ["latest/MLmodel"])
            return Response(body, 200, content_type=S3_XML)
        return Response(S3_DENIED, 403, content_type=S3_XML)

    for path in ("/ml-models", "/ml-data", "/ml-models/1/run/MLmodel", "/ml-models/latest/MLmodel"):
        httpserver.expect_request(path).respond_with_handler(handler)
    result = run(platform, "S3-4")
    assert result.verdict == "failed", result.detail
    assert "list ml-models/latest/ (HTTP 200); read ml-models/latest/MLmodel (HTTP 200)" in result.detail
    assert "1/run" not in result.detail  # the rest of the bucket still refuses


def test_s3_4_cannot_decide_when_neither_bucket_exists(platform, httpserver):
    httpserver.expect_request("/ml-models", method="HEAD").respond_with_data("", status=404)
    httpserver.expect_request("/ml-data", method="HEAD").respond_with_data("", status=404)
    result = run(platform, "S3-4")
    assert result.verdict == "error" and result.detail.startswith("cannot decide: neither ml-models nor ml-data")


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


def test_what_a_check_imports_is_loaded_before_its_budget_starts(platform, monkeypatch, tmp_path):
    """Importing MLflow takes seconds on a slow machine: the modules a check declares are imported before its clock
    starts, so they neither fail its budget nor count in its seconds."""
    import importlib
    import sys
    import time

    from metro_e2e.conformance import checks
    from metro_e2e.conformance.checks import _common

    (tmp_path / "metro_slow_import.py").write_text("import time\ntime.sleep(1.5)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "metro_slow_import", raising=False)
    monkeypatch.setitem(_common.IMPORTS, "S3-5", ("metro_slow_import",))
    monkeypatch.setitem(checks.CHECKS, "S3-5", lambda ctx: importlib.import_module("metro_slow_import").__name__)
    monkeypatch.setattr(engine, "budget_s", lambda clause, ctx: 0.5)
    started = time.monotonic()
    result = run(platform, "S3-5")
    assert time.monotonic() - started >= 1.5  # the import did happen, in this call
    assert result.verdict == "passed" and result.detail == "metro_slow_import", result
    assert result.duration_s < 0.5


HEAVY = ("mlflow", "sklearn", "scipy", "pandas", "kfp")  # roots that cost a second or more to import on 2 cores
FALLBACK_ONLY = {"sklearn.datasets"}  # data.iris_frame imports it only where scikit-learn ships no iris.csv


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):
        return False


def _from_base(node, package: str) -> str:
    """The absolute module of ``from X import ...`` written in ``package``."""
    if not node.level:
        return node.module
    parts = package.split(".")
    return ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))


def _imported(node, package: str) -> set[str]:
    """The modules an import statement loads (``from a import b`` loads ``a.b`` when that is a module)."""
    import ast

    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = _from_base(node, package)
    return {f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names}


def _bindings(nodes, package: str) -> dict[str, tuple[str, str | None]]:
    """What import statements bind: a name -> (module, None) for a module or (module, function) for a function."""
    import ast

    bound = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0],
                    None,
                )
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                bound[alias.asname or alias.name] = (full, None) if _is_module(full) else (base, alias.name)
    return bound


def _source(name: str):
    """(module-level statements, package) of a metro_e2e module, or None."""
    import ast
    import importlib.util
    from pathlib import Path

    if not name.startswith("metro_e2e") or not _is_module(name):
        return None
    origin = importlib.util.find_spec(name).origin
    if not origin or not origin.endswith(".py"):
        return None
    package = name if origin.endswith("__init__.py") else name.rpartition(".")[0]
    return ast.parse(Path(origin).read_text()).body, package


def _closure(name: str, seen: set[str] | None = None) -> set[str]:
    """The modules importing ``name`` loads, read from module-level import statements (recursing through
    metro_e2e's modules; a TYPE_CHECKING block is an ``if``, so it is not read)."""
    import ast

    seen = set() if seen is None else seen
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
        module = ".".join(parts[:depth])
        if module in seen:
            continue
        seen.add(module)
        source = _source(module)
        for node in source[0] if source else ():
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for imported in _imported(node, source[1]):
                    _closure(imported, seen)
    return seen


def _costly(name: str, loaded: set[str]) -> bool:
    """Whether importing ``name`` loads a module of HEAVY that ``loaded`` does not hold yet."""
    return any(m.split(".")[0] in HEAVY and m not in loaded for m in _closure(name))


def _run_time_imports(check) -> set[str]:
    """Every module the check imports as it runs, following its calls into metro_e2e's functions (by name, or as
    ``module.function`` of an imported module, or through a module's ``__getattr__``). Not followed (CONTRIBUTING
    says so): method calls, functions passed as values, ``importlib``, conditional module-level imports."""
    import ast

    found: set[str] = set()
    todo, done = [(check.__module__, check.__name__)], set()
    while todo:
        module, name = todo.pop()
        source = _source(module) if (module, name) not in done else None
        done.add((module, name))
        if source is None:
            continue
        body, package = source
        functions = {n.name: n for n in body if isinstance(n, ast.FunctionDef)}
        if name not in functions:  # a module's __getattr__ may import it lazily (metro_e2e.pipeline does)
            if "__getattr__" in functions:
                todo.append((module, "__getattr__"))
            continue
        statements = [n for n in ast.walk(functions[name]) if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in statements:
            found |= _imported(node, package)
        names = {**_bindings(body, package), **_bindings(statements, package)}
        for call in (n for n in ast.walk(functions[name]) if isinstance(n, ast.Call)):
            if isinstance(call.func, ast.Name):
                target = names.get(call.func.id, (module, call.func.id))
                if target[1] is not None:
                    todo.append(target)
            elif isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
                target = names.get(call.func.value.id)
                if target and target[1] is None:
                    todo.append((target[0], call.func.attr))
    return found


def test_every_costly_module_a_check_imports_as_it_runs_is_declared_and_nothing_else():
    """``@registers(imports=...)`` lists exactly the modules a check imports while it runs that load MLflow,
    scikit-learn, SciPy, pandas or kfp (by name or through metro_e2e's module-level imports): one left out is
    imported inside the clause's budget, one left over is loaded for nothing."""
    from metro_e2e.conformance import checks
    from metro_e2e.conformance.checks._common import IMPORTS

    loaded = _closure("metro_e2e.conformance.checks")  # what every check session has imported before a clause
    wrong = {}
    for clause_id, check in checks.CHECKS.items():
        costly = {m for m in _run_time_imports(check) if _costly(m, loaded)} - FALLBACK_ONLY
        if costly != set(IMPORTS[clause_id]):
            wrong[clause_id] = {"imports while running": sorted(costly), "declared": sorted(IMPORTS[clause_id])}
    assert not wrong, wrong
    assert _costly("metro_e2e.training", loaded) and not _costly("metro_e2e.serving", loaded)


def test_s3_4_json_detail_never_names_the_secret(platform, httpserver):
    _s3(httpserver, (200, _list_result("ml-models", ["x"]), "application/xml"))
    result = run(platform, "S3-4")
    assert platform.config.s3_secret_key.reveal() not in json.dumps(result.as_dict())


# -- MLF-1, MLF-3 ---------------------------------------------------------------------------------------------------------
SEARCH = "/mlflow/api/2.0/mlflow/experiments/search"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "cause"),
    [
        (403, "Invalid Host header", "text/plain", "HTTP 403 (an MLflow 3 server without --allowed-hosts"),
        (502, "<html>Bad Gateway</html>", "text/html", "HTTP 502 (the gateway cannot reach the MLflow service"),
        (200, "<!doctype html><html>Sign in</html>", "text/html", "an HTML page"),
        (200, '{"runs": []}', "application/json", "a JSON list of experiments; got something else"),
    ],
)
def test_mlf_1_fails_unless_the_rest_api_answers(platform, httpserver, status, body, content_type, cause):
    httpserver.expect_request(SEARCH).respond_with_data(body, status=status, content_type=content_type)
    result = run(platform, "MLF-1")
    assert result.verdict == "failed" and cause in result.detail, result.detail


def _client_major() -> int:
    from metro_e2e.registry import client_major

    return client_major()


@pytest.mark.parametrize(
    ("version", "verdict", "cause"),
    [
        ("3.17.2", "passed", "a tested pair"),  # both client majors work with a 3.x server
        ("2.20.3", *(("passed", "a tested pair") if _client_major() == 2 else ("failed", "with server 2.20.3"))),
        ("1.30.0", "failed", "with server 1.30.0"),
        ("<html>", "failed", ""),
    ],
)
def test_mlf_3_names_both_versions_of_an_untested_pair(platform, httpserver, version, verdict, cause):
    httpserver.expect_request("/mlflow/version").respond_with_data(version)
    result = run(platform, "MLF-3")
    assert result.verdict == verdict and cause in result.detail, result.detail
    if verdict == "failed" and cause:
        from metro_e2e.registry import client_version

        assert f"client {client_version()}" in result.detail


# -- serving ------------------------------------------------------------------------------------------------------------
def _serving(httpserver, handler) -> None:
    httpserver.expect_request("/mlflow-model/invocations", method="POST").respond_with_handler(handler)


def _rows_of(request) -> int:
    body = json.loads(request.data)
    return len(body["dataframe_split"]["data"] if "dataframe_split" in body else body["dataframe_records"])


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        (lambda r: Response("OK", 200), "without a JSON 'predictions' field"),
        (lambda r: Response(json.dumps({"predictions": [7] * _rows_of(r)}), 200), "each an Iris class 0-2"),
        (lambda r: Response(json.dumps({"predictions": [0]}), 200), "5 predictions"),
        (lambda r: Response('{"error_code": "INTERNAL_ERROR"}', 500), "answered 500"),
    ],
)
def test_srv_1_fails_unless_every_row_gets_an_iris_class(platform, httpserver, answer, cause):
    _serving(httpserver, answer)
    result = run(platform, "SRV-1")
    assert result.verdict == "failed" and cause in result.detail, result.detail


def _model_server(request):
    """A scoring server that validates like MLflow's, for the Host-routed path only."""
    if request.headers.get("Host") != "mlflow-model.local":
        return Response(S3_DENIED, 403, content_type="application/xml")
    return _scoring(request)


def _scoring(request):
    if request.content_type != "application/json":
        return Response("unsupported", 415)
    try:
        body = json.loads(request.data)
    except ValueError:
        return Response('{"error_code": "BAD_REQUEST", "message": "bad json"}', 400)
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in body]
    if len(keys) != 1 or ("dataframe_records" in body and "wrong column" in json.dumps(body)):
        return Response('{"error_code": "BAD_REQUEST", "message": "no"}', 400)
    return Response(json.dumps({"predictions": [0] * _rows_of(request)}), 200, content_type="application/json")


def test_srv_2_fails_when_the_model_answers_without_the_host_header(platform, httpserver):
    _serving(httpserver, _scoring)  # no Host check at all
    httpserver.expect_request("/mlflow-model").respond_with_data("", status=301, headers={"Location": "/mlflow-model/"})
    result = run(platform, "SRV-2")
    assert result.verdict == "failed" and "HTTP 200 from the model server (predictions)" in result.detail


def test_srv_2_counts_the_model_servers_own_error_as_reaching_it(platform, httpserver):
    _serving(httpserver, lambda r: Response('{"error_code": "BAD_REQUEST", "message": "x"}', 400))
    result = run(platform, "SRV-2")
    assert result.verdict == "failed" and "from the model server (error_code" in result.detail


def test_srv_2_cannot_pass_on_a_server_error(platform, httpserver):
    _serving(httpserver, lambda r: Response("Internal Server Error", 500))
    result = run(platform, "SRV-2")
    assert result.verdict == "failed" and "HTTP 500: cannot tell where it went" in result.detail


def test_srv_2_fails_without_the_redirect(platform, httpserver):
    _serving(httpserver, _model_server)
    httpserver.expect_request("/mlflow-model").respond_with_data("not found", status=404)
    result = run(platform, "SRV-2")
    assert result.verdict == "failed" and "HTTP 404" in result.detail
    httpserver.clear()
    _serving(httpserver, _model_server)
    httpserver.expect_request("/mlflow-model").respond_with_data("", status=301, headers={"Location": "/elsewhere/"})
    assert run(platform, "SRV-2").verdict == "failed"


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        (lambda r: Response("boom", 500), "malformed JSON: HTTP 500"),
        (lambda r: Response('{"predictions": []}', 200), "no input key: HTTP 200"),
        (lambda r: Response("bad request", 400), "error_code=None"),
    ],
)
def test_srv_3_fails_unless_bad_input_gets_a_4xx_with_an_error_code(platform, httpserver, answer, cause):
    _serving(httpserver, answer)
    result = run(platform, "SRV-3")
    assert result.verdict == "failed" and cause in result.detail, result.detail


def test_srv_3_passes_on_mlflows_own_validation(platform, httpserver):
    _serving(httpserver, _scoring)
    result = run(platform, "SRV-3")
    assert result.verdict == "passed", result.detail


class _Predicts:
    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, frame):
        import numpy as np

        return np.full(len(frame), self.value)


def test_srv_4_fails_when_the_served_model_is_not_latests(platform, httpserver):
    _serving(httpserver, _scoring)  # predicts 0 for every row
    platform.shared.latest_model = _Predicts(2)
    result = run(platform, "SRV-4")
    assert result.verdict == "failed" and "150 differ" in result.detail
    platform.shared.latest_model = _Predicts(0)
    assert run(platform, "SRV-4").verdict == "passed"


def test_srv_6_warns_over_the_latency_budget_and_fails_under_strict(platform, httpserver):
    import time

    def slow(request):
        time.sleep(0.02)
        return _scoring(request)

    _serving(httpserver, slow)
    platform.options = dataclasses.replace(platform.options, latency_budget_ms=5)
    result = run(platform, "SRV-6")
    assert result.verdict == "warned" and "p95 under 5 ms" in result.detail
    platform.options = dataclasses.replace(platform.options, strict=True)
    assert run(platform, "SRV-6").verdict == "failed"


# -- KFP-1 --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("healthz", "ui", "cause"),
    [
        ((500, '{"error": "down"}'), (200, "<html></html>"), "answered 500"),
        ((200, "<html>login</html>"), (200, "<html></html>"), "without JSON"),
        ((200, '{"commit_sha": "x"}'), (200, "OK"), "the KFP UI's HTML"),
    ],
)
def test_kfp_1_fails_unless_api_and_ui_answer(platform, httpserver, healthz, ui, cause):
    httpserver.expect_request("/pipeline/apis/v2beta1/healthz").respond_with_data(healthz[1], status=healthz[0])
    httpserver.expect_request("/pipeline/").respond_with_data(ui[1], status=ui[0], content_type="text/html")
    result = run(platform, "KFP-1")
    assert result.verdict == "failed" and cause in result.detail, result.detail


# -- S3-1, S3-2 ---------------------------------------------------------------------------------------------------------
def test_s3_1_fails_on_a_web_page_at_the_root(platform, httpserver):
    httpserver.expect_request("/").respond_with_data("<html>It works!</html>", content_type="text/html")
    result = run(platform, "S3-1")
    assert result.verdict == "failed" and "not an S3 bucket list" in result.detail


def test_s3_2_fails_on_a_missing_bucket_and_on_a_server_error(platform, httpserver):
    httpserver.expect_request("/ml-models", method="HEAD").respond_with_data("", status=200)
    httpserver.expect_request("/ml-data", method="HEAD").respond_with_data("", status=404)
    result = run(platform, "S3-2")
    assert result.verdict == "failed" and "missing: ml-data" in result.detail
    httpserver.clear()
    httpserver.expect_request("/ml-models", method="HEAD").respond_with_data("", status=500)
    result = run(platform, "S3-2")
    assert result.verdict == "failed" and "missing" not in result.detail and "500" in result.detail


# -- PRM-2 and SRV-5 against the in-process platform (moto S3, sqlite MLflow) ----------------------------------------
@pytest.fixture(scope="module")
def trained_platform(tmp_path_factory):
    """One in-process platform for the module (training is the slow part): iris-model v1 (split seed 7), and the
    version a run's MLF-5 trained (the default split)."""
    from metro_e2e import data, training
    from metro_e2e.demo import in_process_platform

    store = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with in_process_platform(store) as config:
        seeded = training.train(config, data.split(data.iris_frame(), seed=7))
        mine = config.replace(experiment="metro-e2e-unit", model_name="metro-e2e-unit")
        yield config, seeded, mine, training.train(mine, data.split(data.iris_frame()))


@pytest.fixture
def promoted_platform(trained_platform):
    """latest/ holds iris-model v1 again; a run context whose MLF-5 trained its own version."""
    from metro_e2e import promotion, registry
    from metro_e2e.storage import Storage

    config, seeded, mine, result = trained_platform
    storage = Storage(config)
    for prefix in (config.latest_prefix, promotion.STAGING_ROOT, "metro-e2e/"):
        storage.delete_prefix(config.models_bucket, prefix)
    promotion.promote(config, version=seeded.version, storage=storage)
    ctx = RunContext(config=config, options=Options(allow_promote=True))
    ctx.shared.trained = Version(mine, result, registry.locate_version(mine, mine.model_name, result.version))
    return ctx


def test_prm_2_passes_and_reads_latest_at_every_moment_of_the_swap(promoted_platform):
    result = run(promoted_platform, "PRM-2")
    assert result.verdict == "passed", result.detail
    assert re.search(r"read at each of the swap's \d+ moments: never empty, one whole model at \d+", result.detail)


def _in_place_promotion(*, delete_first: bool):
    """A promotion as a script would do it, calling ``observe`` after each write: the published one deletes
    latest/ first; a naive one copies over it file by file with no journal a reader could see."""
    from metro_e2e import promotion
    from metro_e2e.storage import sha256_hex

    def promote_location(storage, where, *, config, observe=None):
        bucket, latest = config.models_bucket, config.latest_prefix
        if delete_first:
            storage.delete_prefix(bucket, latest)
            observe("deleting latest/")
        files = {}
        for key in storage.list_keys(where.bucket, where.prefix):
            rel = key[len(where.prefix) :]
            storage.copy(bucket, key, latest + rel)
            files[rel] = sha256_hex(storage.get_bytes(bucket, key))
            observe(f"copying {rel}")
        record = {"name": where.name, "version": where.version, "source_uri": where.source_uri, "files": files}
        storage.put_bytes(bucket, latest + promotion.MARKER_NAME, json.dumps(record).encode())
        return promotion.PromotionResult(where.name, where.version, where.source_uri, bucket, latest, files)

    return promote_location


def test_prm_2_fails_a_promotion_that_empties_latest_first(promoted_platform, monkeypatch):
    from metro_e2e import promotion as metro_promotion

    monkeypatch.setattr(metro_promotion, "promote_location", _in_place_promotion(delete_first=True))
    result = run(promoted_platform, "PRM-2")
    assert result.verdict == "failed" and "latest/ was empty after deleting latest/" in result.detail


def test_prm_2_fails_a_promotion_whose_half_swapped_state_a_reader_would_load(promoted_platform, monkeypatch):
    from metro_e2e import promotion as metro_promotion

    monkeypatch.setattr(metro_promotion, "promote_location", _in_place_promotion(delete_first=False))
    result = run(promoted_platform, "PRM-2")
    assert result.verdict == "failed" and "nothing marking the promotion as under way" in result.detail


@pytest.fixture
def serving_platform(promoted_platform, httpserver):
    """PRM-2 done (latest/ holds the run's version); serving answers with whatever model it last loaded."""
    import tempfile

    import mlflow.pyfunc
    import pandas as pd

    from metro_e2e import promotion

    ctx = promoted_platform
    served = {}

    def load_latest():
        with tempfile.TemporaryDirectory() as folder:
            cfg = ctx.config
            promotion.download_latest(
                ctx.storage, bucket=cfg.models_bucket, latest_prefix=cfg.latest_prefix, dest=folder
            )
            return mlflow.pyfunc.load_model(folder)

    def answer(request):
        if served.get("fail_next"):
            served["fail_next"] -= 1
            return Response("upstream connect error", 503)
        split = json.loads(request.data)["dataframe_split"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        return Response(json.dumps({"predictions": [int(p) for p in served["model"].predict(frame)]}), 200)

    served["model"] = load_latest()  # what the pod loaded before the promotion
    _serving(httpserver, answer)
    assert run(ctx, "PRM-2").verdict == "passed"
    ctx.config = ctx.config.replace(serving_url=httpserver.url_for("/mlflow-model/invocations"))
    ctx.options = dataclasses.replace(ctx.options, restart_timeout_s=1)
    return ctx, served, load_latest


def test_srv_5_fails_a_restart_that_does_nothing(serving_platform):
    ctx, served, load_latest = serving_platform
    ctx.options = dataclasses.replace(ctx.options, restart_serving=lambda: "restarted")
    result = run(ctx, "SRV-5")
    assert result.verdict == "failed" and "predictions still differ" in result.detail


def test_srv_5_passes_a_real_restart(serving_platform):
    ctx, served, load_latest = serving_platform
    ctx.options = dataclasses.replace(
        ctx.options, restart_serving=lambda: served.update(model=load_latest()) or "restarted"
    )
    result = run(ctx, "SRV-5")
    assert result.verdict == "passed" and "rows changed" in result.detail


def test_srv_5_promotes_a_distinguishable_version_when_the_served_model_predicts_alike(serving_platform):
    ctx, served, load_latest = serving_platform
    served["model"] = load_latest()  # the platform already serves a model that predicts like the run's
    ctx.options = dataclasses.replace(
        ctx.options, restart_serving=lambda: served.update(model=load_latest()) or "restarted"
    )
    result = run(ctx, "SRV-5")
    assert result.verdict == "passed" and "rows changed" in result.detail
    promoted = int(re.search(r"serves metro-e2e-unit v(\d+) ", result.detail).group(1))
    assert promoted > int(ctx.shared.trained.result.version)  # a new version, trained on another split
    ctx.options = dataclasses.replace(ctx.options, restart_serving=lambda: "restarted")  # a restart that does nothing
    served["model"] = load_latest()
    assert run(ctx, "SRV-5").verdict == "failed"


def test_srv_5_cannot_decide_when_no_version_predicts_otherwise(serving_platform, monkeypatch):
    from metro_e2e.conformance import checks

    ctx, served, load_latest = serving_platform
    served["model"] = load_latest()
    ctx.options = dataclasses.replace(ctx.options, restart_serving=lambda: "restarted")
    monkeypatch.setattr(checks.serving, "DISTINGUISHING_SPLITS", range(0))
    result = run(ctx, "SRV-5")
    assert result.verdict == "error" and result.detail.startswith("cannot decide: the model served before")


def test_srv_5_does_not_pass_a_noop_restart_after_a_failed_request_before_it(serving_platform):
    """The served model predicts like the run's, and serving answers 503 just before the restart: SRV-5 takes
    the model PRM-1 loaded as what was served, promotes a version that predicts otherwise, and catches the no-op."""
    ctx, served, load_latest = serving_platform
    served["model"] = load_latest()
    served["fail_next"] = 3  # every attempt before the restart
    ctx.shared.latest_model = load_latest()  # what SRV-4 saw served: predicts like the run's version
    ctx.options = dataclasses.replace(ctx.options, restart_serving=lambda: "restarted")
    result = run(ctx, "SRV-5")
    assert result.verdict == "failed" and "predictions still differ" in result.detail


def test_prm_2_cannot_decide_when_s3_lists_no_etags(promoted_platform, monkeypatch):
    """Without ETags the moments of the swap cannot be told apart by content: never a pass on names alone."""
    from metro_e2e import storage as storage_module

    listed = storage_module.Storage.list_objects

    def without_etags(self, bucket, prefix):
        for info in listed(self, bucket, prefix):
            yield storage_module.ObjectInfo(info.key, info.size, "")

    monkeypatch.setattr(storage_module.Storage, "list_objects", without_etags)
    result = run(promoted_platform, "PRM-2")
    assert result.verdict == "error" and "without ETags" in result.detail
