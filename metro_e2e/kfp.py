"""Kubeflow Pipelines through ``kfp.Client``, with the timeouts and the poll loop it lacks.

``kfp.Client(...)`` calls the server inside its constructor and retries for
up to 25 s, its requests carry no timeout, and ``wait_for_run_completion``
does not stop on ``CANCELED`` (PLATFORM.md breakage 6). Here the client is
built in a thread with a deadline after a bounded health check, every
request it sends afterwards has a connect/read timeout, and ``wait`` polls
``get_run`` until any terminal state, printing progress and naming the
failing task and its error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from metro_e2e._poll import NotYet, PollTimeout, poll
from metro_e2e.errors import EndpointUnreachable, KfpError, MetroE2EError

log = logging.getLogger(__name__)

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}
KFP_ATTEMPTS = 2  # one retry of a connection or read error; urllib3's default would make 4 attempts


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    state: str
    seconds: float
    failing_task: str | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.state == "SUCCEEDED":
            return f"run {self.run_id} SUCCEEDED in {self.seconds:.0f} s"
        where = (
            f"; failing task {self.failing_task}: {self.error}"
            if self.failing_task
            else (f"; {self.error}" if self.error else "")
        )
        return f"run {self.run_id} ended {self.state} after {self.seconds:.0f} s{where}"


def _state(value: Any) -> str:
    text = str(value or "").upper()
    return text.split(".")[-1] if text else "RUNTIME_STATE_UNSPECIFIED"


class Kfp:
    """One KFP endpoint (``<gateway>/pipeline``)."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self._factory = client_factory
        self._client = None

    @classmethod
    def from_config(cls, config) -> Kfp:
        """The KFP endpoint of a ``MetroConfig``, with its connect and read timeouts."""
        return cls(config.kfp_url, connect_timeout=config.connect_timeout, read_timeout=config.read_timeout)

    def healthz(self) -> dict:
        url = f"{self.url}/apis/v2beta1/healthz"
        try:
            response = requests.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise EndpointUnreachable(f"KFP at {url} did not answer: {type(exc).__name__}", url=url) from exc
        if response.status_code != 200:
            raise KfpError(f"KFP healthz at {url} answered {response.status_code}: {response.text[:200]!r}")
        try:
            return response.json()
        except ValueError:
            raise KfpError(f"KFP healthz at {url} answered 200 without JSON: {response.text[:120]!r}") from None

    def client(self):
        """A ``kfp.Client`` built within a deadline, whose later requests all time out."""
        if self._client is not None:
            return self._client
        self.healthz()
        holder: dict[str, Any] = {}

        def build() -> None:
            try:
                factory = self._factory
                if factory is None:
                    import kfp

                    factory = kfp.Client
                holder["client"] = factory(host=self.url)
            except Exception as exc:  # noqa: BLE001 - reported below with the URL
                holder["error"] = exc

        thread = threading.Thread(target=build, daemon=True)
        thread.start()
        thread.join(sum(self.timeout) + 5)
        if "client" not in holder:
            error = holder.get("error")
            raise EndpointUnreachable(
                f"kfp.Client({self.url}) did not come up: {type(error).__name__ if error else 'timed out'}",
                url=self.url,
            ) from error
        client = holder["client"]
        api_client = getattr(getattr(client, "_run_api", None), "api_client", None)
        if api_client is not None:  # every later request gets a connect/read timeout and the suite's retries
            import urllib3

            rest = api_client.rest_client
            rest.pool_manager.clear()  # the constructor's pools were made with urllib3's default retries
            rest.pool_manager.connection_pool_kw["retries"] = urllib3.Retry(
                total=KFP_ATTEMPTS - 1, redirect=0, status=0, raise_on_status=False
            )
            unbounded = rest.request
            timeout = self.timeout

            def request(*args, _request_timeout=None, **kwargs):
                # kfp_server_api passes timeout=None to urllib3 unless a call sets one; set it for every call
                return unbounded(*args, _request_timeout=_request_timeout or timeout, **kwargs)

            rest.request = request
        self._client = client
        return client

    def upload(self, package_path: str, name: str) -> tuple[str, str]:
        """Upload a compiled pipeline; return (pipeline id, version id)."""
        client = self.client()
        pipeline = self._call("upload the pipeline", client.upload_pipeline, package_path, pipeline_name=name)
        versions = self._call("list pipeline versions", client.list_pipeline_versions, pipeline.pipeline_id)
        found = getattr(versions, "pipeline_versions", None) or []
        if not found:
            raise KfpError(f"pipeline {name} was uploaded but has no version")
        return pipeline.pipeline_id, found[0].pipeline_version_id

    def start(
        self, *, pipeline_id: str, version_id: str, run_name: str, experiment: str, params: dict[str, Any]
    ) -> tuple[str, str]:
        """Create an experiment and a run of the pipeline version; return (experiment id, run id)."""
        client = self.client()
        exp = self._call("create an experiment", client.create_experiment, experiment)
        run = self._call(
            "create a run",
            client.run_pipeline,
            experiment_id=exp.experiment_id,
            job_name=run_name,
            pipeline_id=pipeline_id,
            version_id=version_id,
            params=params,
        )
        return exp.experiment_id, run.run_id

    def wait(
        self, run_id: str, *, timeout_s: float, poll_s: float = 5.0, progress: Callable[[str], None] | None = None
    ) -> RunOutcome:
        """Poll until the run reaches any terminal state (CANCELED included) or ``timeout_s`` passes."""
        client = self.client()
        started = time.monotonic()

        def attempt() -> RunOutcome | NotYet:
            run = self._call("get the run", client.get_run, run_id)
            state = _state(getattr(run, "state", None))
            elapsed = time.monotonic() - started
            if progress:
                progress(f"KFP run {run_id}: {state} after {elapsed:.0f} s")
            if state in TERMINAL:
                task, error = _failing_task(run) if state != "SUCCEEDED" else (None, None)
                return RunOutcome(run_id, state, elapsed, task, error or _error_text(getattr(run, "error", None)))
            return NotYet((state, elapsed))

        try:
            return poll(attempt, timeout_s=timeout_s, interval_s=poll_s, what=f"KFP run {run_id}")
        except PollTimeout as exc:
            state, elapsed = exc.seen
            return RunOutcome(run_id, "TIMED_OUT", elapsed, None, f"still {state} after {timeout_s:.0f} s")

    def delete_pipeline(self, pipeline_id: str) -> None:
        client = self.client()
        versions = self._call("list pipeline versions", client.list_pipeline_versions, pipeline_id)
        for version in getattr(versions, "pipeline_versions", None) or []:
            self._call(
                "delete a pipeline version", client.delete_pipeline_version, pipeline_id, version.pipeline_version_id
            )
        self._call("delete the pipeline", client.delete_pipeline, pipeline_id)

    def pipeline_id(self, name: str) -> str | None:
        """The id of the pipeline called ``name``, or None when there is none."""
        return self._call("find the pipeline", self.client().get_pipeline_id, name)

    def experiment_id(self, name: str) -> str | None:
        """The id of the experiment called ``name``, or None when there is none."""
        client = self.client()
        found = self._call("find the experiment", client.list_experiments, filter=_name_filter(name))
        named = [e for e in getattr(found, "experiments", None) or [] if getattr(e, "display_name", None) == name]
        if len(named) > 1:
            raise KfpError(f"{len(named)} KFP experiments are called {name!r}; not deleting any")
        return named[0].experiment_id if named else None

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("delete the experiment", self.client().delete_experiment, experiment_id)

    def _call(self, action: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MetroE2EError:
            raise
        except Exception as exc:  # noqa: BLE001 - kfp_server_api and urllib3 raise many kinds
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            status = getattr(exc, "status", None)
            if isinstance(status, int) and status:  # kfp_server_api's ApiException: say what the server said
                text = f"HTTP {status}: {_api_message(getattr(exc, 'body', None))}"
            if "timed out" in text.lower() or "Max retries" in text or "Connection refused" in text:
                raise EndpointUnreachable(
                    f"cannot {action}: KFP at {self.url} did not answer ({text[:160]})", url=self.url
                ) from exc
            raise KfpError(f"cannot {action}: KFP at {self.url} answered: {text[:400]}") from exc


def _api_message(body: Any) -> str:
    """The message of a KFP error body: ``error_message`` (the upload handler) or ``message`` (grpc-gateway)."""
    import json

    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()[:300] or "no body"
    if isinstance(parsed, dict):
        return str(parsed.get("error_message") or parsed.get("message") or parsed.get("error") or parsed)[:300]
    return text[:300]


def _name_filter(name: str) -> str:
    """A v2beta1 list filter for ``display_name == name`` (the form kfp.Client builds itself)."""
    import json

    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def _error_text(error: Any) -> str | None:
    if not error:
        return None
    message = getattr(error, "message", None) if not isinstance(error, dict) else error.get("message")
    return str(message or error)[:300]


def _failing_task(run: Any) -> tuple[str | None, str | None]:
    details = getattr(getattr(run, "run_details", None), "task_details", None) or []
    for task in details:
        if _state(getattr(task, "state", None)) in ("FAILED", "CANCELED"):
            return getattr(task, "display_name", None) or getattr(task, "task_id", None), _error_text(
                getattr(task, "error", None)
            )
    return None, None
