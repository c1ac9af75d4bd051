"""The MLflow model server behind the gateway: predictions, Host routing, bad input, serving what ``latest/``
holds, serving a promoted version after a restart, and latency."""

from __future__ import annotations

import statistics
import time

from metro_e2e import serving
from metro_e2e._poll import NotYet, PollTimeout, poll
from metro_e2e.conformance.checks._common import (
    fail_from,
    get,
    iris_rows,
    json_or_none,
    load_latest,
    registers,
    serving_client,
)
from metro_e2e.conformance.context import ClauseFailed, RunContext, Undecided, Version
from metro_e2e.errors import MetroE2EError


@registers("SRV-1")
def check_srv_1(ctx: RunContext) -> str:
    client = serving_client(ctx)
    out = []
    for fmt in ("dataframe_split", "dataframe_records"):
        try:
            answer = client.predict_frame(iris_rows(5), fmt)
        except MetroE2EError as exc:
            raise fail_from(exc, f"200 with predictions for a {fmt} request") from None
        bad = [p for p in answer.predictions if p not in (0, 1, 2)]
        if len(answer.predictions) != 5 or bad:
            raise ClauseFailed("5 predictions, each an Iris class 0-2", f"{answer.predictions}", url=client.url)
        out.append(f"{fmt} -> {answer.predictions}")
    return "; ".join(out)


@registers("SRV-2")
def check_srv_2(ctx: RunContext) -> str:
    payload = serving.dataframe_split(iris_rows(1))
    no_host = serving_client(ctx, host=None).post(payload.body, payload.content_type)
    ctx.evidence("POST without the serving Host header", no_host)
    answer = json_or_none(no_host)
    if isinstance(answer, dict) and ("predictions" in answer or "error_code" in answer):
        # the scoring server answers predictions, or its own JSON error (a 4xx with error_code): either way the
        # request reached the model without the Host header that should gate it
        raise ClauseFailed(
            f"a request without Host: {ctx.config.serving_host} not to reach the model",
            f"HTTP {no_host.status_code} from the model server ({', '.join(sorted(answer))})",
            url=no_host.url,
            body=no_host.text,
        )
    if no_host.status_code >= 500 or 300 <= no_host.status_code < 400:
        where = f" to {no_host.headers.get('Location')!r}" if no_host.is_redirect else ""
        raise ClauseFailed(
            "the request without the Host header to be answered where it falls through (S3 at the root)",
            f"HTTP {no_host.status_code}{where}: cannot tell where it went",
            url=no_host.url,
            body=no_host.text,
        )
    base = ctx.config.serving_url.rsplit("/invocations", 1)[0]
    redirect = get(ctx, base, headers={"Host": ctx.config.serving_host})
    location = redirect.headers.get("Location", "")
    if redirect.status_code not in (301, 302, 307, 308) or not location.endswith("/mlflow-model/"):
        raise ClauseFailed(
            f"{base} to redirect to {base}/",
            f"HTTP {redirect.status_code} Location {location!r}",
            url=base,
            body=redirect.text,
        )
    return f"without the Host header: HTTP {no_host.status_code} (not the model); {base} -> {redirect.status_code} {location}"


@registers("SRV-3")
def check_srv_3(ctx: RunContext) -> str:
    client = serving_client(ctx)
    cases = [
        ("malformed JSON", b"{not json", "application/json", 400),
        ("no input key", b"{}", "application/json", 400),
        (
            "two input keys",
            b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "instances": [[1]]}',
            "application/json",
            400,
        ),
        ("wrong columns", b'{"dataframe_records": [{"wrong column": 1.0}]}', "application/json", 400),
        ("unsupported content type", b"a=1", "application/x-www-form-urlencoded", 415),
    ]
    wrong = []
    for name, body, content_type, want in cases:
        r = client.post(body, content_type)
        ctx.evidence(name, r)
        body = json_or_none(r)
        code = body.get("error_code") if isinstance(body, dict) else None
        if r.status_code != want or (want == 400 and not code):
            wrong.append(f"{name}: HTTP {r.status_code} error_code={code}")
    if wrong:
        raise ClauseFailed(
            "400 with a JSON error_code (415 for the content type), never 5xx", "; ".join(wrong), url=client.url
        )
    return "4 bad bodies -> 400 with error_code, form body -> 415"


@registers("SRV-4")
def check_srv_4(ctx: RunContext) -> str:
    rows = iris_rows()
    expected = [int(p) for p in ctx.shared.latest_model.predict(rows).tolist()]
    try:
        served = serving_client(ctx).predict_frame(rows).predictions
    except MetroE2EError as exc:
        raise fail_from(exc, "predictions for all 150 rows") from None
    diff = [i for i, (a, b) in enumerate(zip(served, expected, strict=False)) if a != b]
    if len(served) != len(expected) or diff:
        raise ClauseFailed(
            "the served predictions to equal latest/'s model on 150 rows",
            f"{len(diff)} differ (first rows {diff[:5]}); the server may serve a stale model",
        )
    return "150/150 predictions equal the model in latest/"


def _differ(got: list | None, expected: list) -> int:
    """How many predictions differ (a missing or short answer counts every missing row)."""
    got = got or []
    return sum(1 for a, b in zip(got, expected, strict=False) if a != b) + abs(len(expected) - len(got))


DISTINGUISHING_SPLITS = range(1, 21)  # split seeds SRV-5 tries for a version that predicts unlike the served model


@registers(
    "SRV-5",
    imports=("mlflow.pyfunc", "metro_e2e.registry", "metro_e2e.training", "sklearn.model_selection"),
)
def check_srv_5(ctx: RunContext) -> str:
    config, result = ctx.shared.promoted.config, ctx.shared.promoted.result
    rows = iris_rows()
    expected = [int(p) for p in load_latest(ctx).predict(rows).tolist()]
    before = _served_before(ctx, rows)
    # what serving answers now, or (if it does not answer) what it served when SRV-4 passed: latest/ before PRM-2
    reference = before if before is not None else _predictions(ctx.shared.latest_model, rows)
    if reference == expected:  # a restart would change nothing visible: promote a version that predicts otherwise
        config, result, expected = _distinguishable_version(ctx, config, result, served=reference)
    ctx.shared.serving_restarted = True  # set first: the run restarts it again after putting latest/ back
    state = ctx.restart_serving()

    def serves_it() -> str | NotYet:
        try:
            served = serving_client(ctx).predict_frame(rows).predictions
        except MetroE2EError as exc:
            return NotYet(str(exc))
        if served != expected:
            return NotYet(f"{_differ(served, expected)} of 150 predictions still differ from v{result.version}")
        changed = "it answered nothing before" if before is None else f"{_differ(before, expected)} rows changed"
        return f"after restart ({state}) the endpoint serves {config.model_name} v{result.version} ({changed})"

    try:
        return poll(
            serves_it, timeout_s=ctx.options.restart_timeout_s, interval_s=2, what="serving the promoted version"
        )
    except PollTimeout as exc:
        raise ClauseFailed(
            f"the endpoint to serve v{result.version} within {ctx.options.restart_timeout_s:.0f} s of the restart",
            exc.seen or "nothing yet",
            url=ctx.config.serving_url,
        ) from None


def _served_before(ctx: RunContext, rows, attempts: int = 3) -> list | None:
    """The served predictions before the restart; None if serving does not answer (a passing error, a 503)."""
    for attempt in range(attempts):
        try:
            return serving_client(ctx).predict_frame(rows).predictions
        except MetroE2EError:
            if attempt + 1 < attempts:
                time.sleep(1)
    return None


def _predictions(model, rows) -> list | None:
    return None if model is None else [int(p) for p in model.predict(rows).tolist()]


def _distinguishable_version(ctx: RunContext, config, result, *, served: list):
    """Train and promote a version of the run's model whose predictions differ from ``served``, so that serving
    it after the restart is observable; ``Undecided`` when no split gives one."""
    from metro_e2e import data, promotion, registry, training

    frame, rows = data.iris_frame(), iris_rows()
    for seed in DISTINGUISHING_SPLITS:
        parts = data.split(frame, seed=seed)
        if [int(p) for p in training.fit(parts)[0].predict(rows)] == served:
            continue
        try:
            trained = training.train(config, parts, lineage=ctx.run_id)  # the same fit, logged and registered
            where = registry.locate_version(config, config.model_name, trained.version)
            promotion.promote_location(ctx.storage, where, config=ctx.config)
            ctx.shared.promoted = Version(config, trained)
        except MetroE2EError as exc:
            raise fail_from(exc, "a second version, distinguishable from the served model, to be promoted") from None
        return config, trained, [int(p) for p in load_latest(ctx).predict(rows).tolist()]
    raise Undecided(
        f"the model served before the promotion predicts like {config.model_name} v{result.version} on all 150 "
        f"rows, and so does a version trained on each of {len(DISTINGUISHING_SPLITS)} other splits: whether "
        "serving switched after the restart cannot be seen"
    )


@registers("SRV-6")
def check_srv_6(ctx: RunContext) -> str:
    client = serving_client(ctx)
    payload = serving.dataframe_split(iris_rows(1))
    times = []
    for _ in range(50):
        started = time.perf_counter()
        client.predict(payload)
        times.append((time.perf_counter() - started) * 1000)
    p95 = statistics.quantiles(times, n=20)[-1]
    if p95 > ctx.options.latency_budget_ms:
        raise ClauseFailed(
            f"p95 under {ctx.options.latency_budget_ms:.0f} ms",
            f"p95 {p95:.0f} ms (median {statistics.median(times):.0f} ms)",
            url=client.url,
        )
    return f"p95 {p95:.0f} ms, median {statistics.median(times):.0f} ms over 50 requests"
