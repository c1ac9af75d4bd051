"""Client for the platform's MLflow model server (``/invocations`` behind the gateway).

Payload builders cover every input format the MLflow scoring server accepts;
``ServingClient`` sends them with the ``Host: mlflow-model.local`` header the
gateway routes on, with a timeout, and raises ``ServingError`` (status,
``error_code``, message) for any non-2xx answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import requests

from metro_e2e._http import why_no_answer
from metro_e2e.config import SERVING_HOST, MetroConfig
from metro_e2e.errors import EndpointUnreachable, ServingError

JSON = "application/json"
CSV = "text/csv"


@dataclass(frozen=True)
class Payload:
    """A request body in one of the scoring server's formats."""

    format: str
    content_type: str
    body: bytes


def _json(fmt: str, value: Any) -> Payload:
    return Payload(fmt, JSON, json.dumps({fmt: value}).encode())


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def dataframe_split(frame: pd.DataFrame) -> Payload:
    split = json.loads(frame.to_json(orient="split", index=False))
    return _json("dataframe_split", {"columns": split["columns"], "data": split["data"]})


def dataframe_records(frame: pd.DataFrame) -> Payload:
    return _json("dataframe_records", _records(frame))


def instances(frame: pd.DataFrame) -> Payload:
    """``instances`` as one object per row (bare arrays are refused by a model with a column signature)."""
    return _json("instances", _records(frame))


def inputs(frame: pd.DataFrame) -> Payload:
    """``inputs`` as one list per column."""
    return _json("inputs", {col: json.loads(frame[col].to_json(orient="values")) for col in frame.columns})


def csv(frame: pd.DataFrame) -> Payload:
    return Payload("csv", CSV, frame.to_csv(index=False).encode())


BUILDERS: dict[str, Callable[[pd.DataFrame], Payload]] = {
    "dataframe_split": dataframe_split,
    "dataframe_records": dataframe_records,
    "instances": instances,
    "inputs": inputs,
    "csv": csv,
}


@dataclass(frozen=True)
class Prediction:
    """A successful answer: the predictions, HTTP status and round-trip seconds."""

    predictions: list
    status: int
    elapsed_s: float


class ServingClient:
    """POST payloads to ``url`` with the serving Host header and bounded timeouts."""

    def __init__(
        self,
        url: str,
        *,
        host: str | None = SERVING_HOST,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.host = host
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or requests.Session()

    @classmethod
    def from_config(cls, config: MetroConfig, *, session: requests.Session | None = None) -> ServingClient:
        return cls(
            config.serving_url,
            host=config.serving_host,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            session=session,
        )

    def post(self, body: bytes, content_type: str, *, host: str | None = None) -> requests.Response:
        """Send a raw body; return the response whatever its status (for negative checks)."""
        headers = {"Content-Type": content_type}
        if host or self.host:
            headers["Host"] = host or self.host
        try:
            return self.session.post(self.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            connect, read = self.timeout
            why = why_no_answer(exc, self.url, connect_timeout=connect, read_timeout=read)
            raise EndpointUnreachable(
                f"model server at {self.url} gave no answer: {why}",
                url=self.url,
                hint="check METRO_URL / METRO_SERVING_URL and that serving is running",
            ) from exc

    def predict(self, payload: Payload) -> Prediction:
        """Send ``payload``; return its predictions or raise ``ServingError``."""
        started = time.perf_counter()
        response = self.post(payload.body, payload.content_type)
        elapsed = time.perf_counter() - started
        body = _json_or_none(response)
        if not 200 <= response.status_code < 300:
            error_code = body.get("error_code") if isinstance(body, dict) else None
            message = body.get("message") if isinstance(body, dict) else response.text[:200]
            raise ServingError(
                f"model server at {self.url} answered {response.status_code}"
                + (f" {error_code}" if error_code else "")
                + f" to a {payload.format} request: {str(message)[:300]}",
                status=response.status_code,
                error_code=error_code,
                server_message=None if message is None else str(message),
            )
        if not isinstance(body, dict) or "predictions" not in body:
            raise ServingError(
                f"model server at {self.url} answered {response.status_code} without a JSON 'predictions' field: "
                f"{response.text[:200]!r}",
                status=response.status_code,
                hint="the serving route must reach `mlflow models serve`: check METRO_SERVING_URL and the "
                "gateway's /mlflow-model/ route for Host mlflow-model.local",
            )
        return Prediction(list(body["predictions"]), response.status_code, elapsed)

    def predict_frame(self, frame: pd.DataFrame, fmt: str = "dataframe_split") -> Prediction:
        return self.predict(BUILDERS[fmt](frame))


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class InProcessScoring(requests.adapters.BaseAdapter):
    """A requests transport answered by MLflow's own scoring-server app, in this process.

    Mount it on a session (``session.mount("http://", InProcessScoring(model))``)
    to run ``ServingClient`` against a loaded pyfunc model with no socket: the
    request goes through the same ASGI app ``mlflow models serve`` runs,
    including its error handling, driven here by a minimal ASGI call.
    """

    def __init__(self, model) -> None:
        super().__init__()
        from mlflow.pyfunc import scoring_server

        self.app = scoring_server.init(model)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):  # noqa: D102 - requests adapter protocol
        import asyncio
        from urllib.parse import urlsplit

        self.requests.append(request)
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        # The gateway rewrites /mlflow-model/ to / before the model server sees the path.
        path = urlsplit(request.url).path.removeprefix("/mlflow-model") or "/"
        status, headers, content = asyncio.run(_asgi_call(self.app, request.method, path, request.headers, body))
        response = requests.Response()
        response.status_code = status
        response._content = content
        response.headers.update(headers)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


async def _asgi_call(app, method: str, path: str, headers, body: bytes) -> tuple[int, dict, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), str(v).encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 0),
        "server": ("in-process", 80),
    }
    inbox = [{"type": "http.request", "body": body, "more_body": False}]
    answer: dict = {"status": 500, "headers": {}, "body": b""}

    async def receive():
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["headers"], answer["body"]
