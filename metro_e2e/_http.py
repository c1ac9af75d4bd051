"""One wording, everywhere, for an HTTP request that got no answer (preflight, clause details, serving, MLflow)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def no_connection_within(connect_timeout: float) -> str:
    return f"no connection within {connect_timeout:g} s (METRO_CONNECT_TIMEOUT)"


def no_answer_within(read_timeout: float) -> str:
    return f"no answer within {read_timeout:g} s (METRO_READ_TIMEOUT)"


def why_no_answer(exc: Exception, url: str, *, connect_timeout: float, read_timeout: float) -> str:
    """Why ``url`` gave no HTTP answer, in words a user can act on (names the timeout setting that ran out)."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed (a plain-HTTP endpoint given as https://?)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return no_connection_within(connect_timeout)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "connected, but " + no_answer_within(read_timeout)
    return why_in_text(str(exc), url, read_timeout=read_timeout) or f"no answer ({type(exc).__name__})"


def why_in_text(text: str, url: str, *, read_timeout: float) -> str | None:
    """The same words, read from an error's text (clients such as MLflow's wrap the original exception)."""
    if status := re.search(r"too many (5\d\d) error responses", text):
        code = status.group(1)
        if code in ("502", "503", "504"):
            return f"answered {code} (the gateway cannot reach the service behind it)"
        return f"answered {code} (a server error) to every attempt"
    if "NameResolution" in text or "Name or service not known" in text or "nodename nor servname" in text:
        return f"host {urlsplit(url).hostname!r} does not resolve"
    if "refused" in text.lower():
        return "connection refused: nothing listens there"
    if "Read timed out" in text or "ReadTimeout" in text:
        return "connected, but " + no_answer_within(read_timeout)
    if "RemoteDisconnected" in text or "reset by peer" in text or "aborted" in text.lower():
        return "the connection was closed without an answer"
    return None
