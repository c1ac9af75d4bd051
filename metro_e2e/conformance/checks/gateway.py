"""GW-1: the gateway answers."""

from __future__ import annotations

import requests

from metro_e2e._http import why_no_answer
from metro_e2e.conformance.checks._common import registers
from metro_e2e.conformance.context import ClauseFailed, RunContext


@registers("GW-1")
def check_gw_1(ctx: RunContext) -> str:
    url = ctx.config.url + "/"
    try:
        response = requests.get(url, timeout=ctx.timeout, allow_redirects=False)
    except requests.RequestException as exc:
        connect, read = ctx.timeout
        why = why_no_answer(exc, url, connect_timeout=connect, read_timeout=read)
        hint = "check --url / METRO_URL and that the gateway is reachable from here"
        if isinstance(exc, requests.exceptions.SSLError):
            hint = "if the gateway speaks plain HTTP, use http:// in --url / METRO_URL"
        raise ClauseFailed(
            "an HTTP answer from the gateway",
            f"none: {ctx.config.mask(url)} [{ctx.config.source_of('url')}]: {why}",
            hint=hint,
        ) from None
    ctx.evidence(f"GET {url}", response)
    if response.status_code >= 500:  # any server error: the gateway, or what sits at its root, is broken
        raise ClauseFailed(
            "the gateway to answer without a server error",
            f"HTTP {response.status_code} {response.reason or ''}".rstrip(),
            url=response.url,
            body=response.text,
        )
    return f"HTTP {response.status_code} from {ctx.config.url}/ in {response.elapsed.total_seconds() * 1000:.0f} ms"
