"""One wording, everywhere, for an HTTP request that got no answer (preflight, clause details, serving)."""

from __future__ import annotations

from urllib.parse import urlsplit


def why_no_answer(exc: Exception, url: str, *, connect_timeout: float, read_timeout: float) -> str:
    """Why ``url`` gave no HTTP answer, in words a user can act on (names the timeout setting that ran out)."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed (a plain-HTTP endpoint given as https://?)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {connect_timeout:g} s (METRO_CONNECT_TIMEOUT)"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"connected, but no answer within {read_timeout:g} s (METRO_READ_TIMEOUT)"
    text = str(exc)
    if "NameResolution" in text or "Name or service not known" in text or "nodename nor servname" in text:
        return f"host {urlsplit(url).hostname!r} does not resolve"
    if "refused" in text.lower():
        return "connection refused: nothing listens there"
    if "RemoteDisconnected" in text or "reset by peer" in text or "aborted" in text.lower():
        return "the connection was closed without an answer"
    return f"no answer ({type(exc).__name__})"
