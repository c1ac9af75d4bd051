"""A fake KFP 2.4.0 API server on loopback, derived from that version's v2beta1 API.

Routes, query parameters, request bodies and response shapes come from the swagger file KFP 2.4.0
publishes (``fixtures/kfp-2.4.0/kfp_api_single_file.swagger.json``, from kubeflow/pipelines at tag
2.4.0). Every answer the fake gives is validated against it, with unknown fields refused, and a
mismatch is recorded in ``shape_errors`` (``__exit__`` raises on any). Where 2.4.0's Go source answers
something its swagger does not say, ``SOURCE`` declares it with the file it comes from.

The fake behaves as 2.4.0 does where the suite depends on it: the upload reads the spec with that
backend's protos (``metro_e2e.pipeline.backend``) and refuses what it cannot read; a run's driver
refuses a Kubernetes config it cannot read and passes runtime constants through as text; runs move
through the states a client must survive (PENDING, RUNNING, PAUSED, CANCELING, ...); lists page;
unknown ids answer 404 with a runtimeError body.

``outcome`` decides how runs end (SUCCEEDED, FAILED with a failing task, CANCELED, SKIPPED, or NEVER),
``path`` the states a run shows before that; ``hang`` makes chosen endpoints sleep past any client
timeout; ``execute`` runs the uploaded pipeline (see ``local_executor``).
"""

from __future__ import annotations

import base64
import copy
import email.parser
import email.policy
import functools
import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema

from metro_e2e.pipeline import backend

SWAGGER = Path(__file__).resolve().parents[2] / "fixtures" / "kfp-2.4.0" / "kfp_api_single_file.swagger.json"
VERSION = "2.4.0"
API = "/apis/v2beta1"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")

# Where KFP 2.4.0's source answers something its swagger does not describe (paths are in kubeflow/pipelines).
SOURCE = {
    # backend/src/apiserver/main.go: /apis/v2beta1/healthz is a plain handler writing these three fields
    "healthz": {
        "type": "object",
        "properties": {
            "commit_sha": {"type": "string"},
            "tag_name": {"type": "string"},
            "multi_user": {"type": "boolean"},
        },
        "required": ["commit_sha", "tag_name", "multi_user"],
        "additionalProperties": False,
    },
    # backend/src/apiserver/server/pipeline_upload_server.go writeErrorToResponse: apiv1beta1.Error as JSON
    # (400 for a missing or unreadable file, 409 for a name that exists, 500 for anything else, an invalid spec too)
    "upload_error": {
        "type": "object",
        "properties": {"error_message": {"type": "string"}, "error_details": {"type": "string"}},
        "required": ["error_message"],
        "additionalProperties": False,
    },
    # google.protobuf.Any in JSON is {"@type": ..., <fields>}, as protobufAny's own description says
    "protobufAny": {"type": "object", "required": ["@type"]},
    # backend/api/v2beta1/runtime_config.proto: map<string, google.protobuf.Value> parameters, any JSON value
    # (the swagger generator writes Value as an object)
    "runtime_parameter": {},
}
# backend/src/apiserver/common/utils.go pipelineNamePattern, applied to pipelineInfo.name on upload
PIPELINE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
# backend/src/apiserver/list/list.go: page size 0 means 20, at most 200
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 200
GRPC = {400: 3, 404: 5, 409: 6, 500: 13}


class Route:
    def __init__(self, method: str, template: str, operation: dict) -> None:
        self.method = method
        self.template = template
        self.operation_id = operation["operationId"]
        self.parameters = operation.get("parameters", [])
        self.responses = operation.get("responses", {})
        pattern = re.sub(r"\\\{([^}]+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/:]+)", re.escape(template))
        self.regex = re.compile(pattern + "$")


class KfpApi:
    """The v2beta1 API of KFP 2.4.0, as its swagger declares it."""

    def __init__(self, path: Path = SWAGGER) -> None:
        self.swagger = json.loads(path.read_text())
        self.definitions = copy.deepcopy(self.swagger["definitions"])
        self.definitions["protobufAny"] = SOURCE["protobufAny"]
        parameters = self.definitions["v2beta1RuntimeConfig"]["properties"]["parameters"]
        parameters["additionalProperties"] = SOURCE["runtime_parameter"]
        self.routes = [
            Route(method.upper(), template, operation)
            for template, operations in self.swagger["paths"].items()
            for method, operation in operations.items()
        ]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.regex.match(path)
            if found and route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    @functools.cached_property
    def _strict_definitions(self) -> dict:
        strict = copy.deepcopy(self.definitions)

        def close(schema):
            if isinstance(schema, dict):
                if schema.get("type") == "object" and "properties" in schema:
                    schema.setdefault("additionalProperties", False)
                for value in schema.values():
                    close(value)
            elif isinstance(schema, list):
                for value in schema:
                    close(value)

        for name, schema in strict.items():
            if name != "protobufAny":
                close(schema)
        return strict

    def errors(self, schema: dict, value, *, strict: bool) -> list[str]:
        """How ``value`` differs from ``schema`` (a swagger schema or ``$ref``); unknown fields count when strict."""
        root = {**schema, "definitions": self._strict_definitions if strict else self.definitions}
        validator = jsonschema.Draft4Validator(root)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in validator.iter_errors(value)]

    def response_schema(self, route: Route | None, status: int) -> dict:
        if route is None:
            return SOURCE["healthz"]
        if route.operation_id in ("UploadPipeline", "UploadPipelineVersion") and status != 200:
            return SOURCE["upload_error"]
        answer = route.responses.get(str(status)) or route.responses["default"]
        return answer.get("schema", {"type": "object", "additionalProperties": False})

    def query_errors(self, route: Route, query: dict[str, list[str]]) -> list[str]:
        """grpc-gateway's parsing of query parameters by their declared type (400 when one does not parse)."""
        problems = []
        for param in route.parameters:
            if param["in"] != "query" or param["name"] not in query:
                continue
            raw = query[param["name"]][-1]
            if param.get("type") == "integer":
                try:
                    number = int(raw)
                except ValueError:
                    problems.append(f"parameter {param['name']}: strconv.ParseInt: parsing {raw!r}: invalid syntax")
                    continue
                if param.get("format") == "int32" and not -(2**31) <= number < 2**31:
                    problems.append(f"parameter {param['name']}: value out of range")
            if param.get("type") == "boolean" and raw not in ("true", "false", "1", "0"):
                problems.append(f"parameter {param['name']}: strconv.ParseBool: parsing {raw!r}: invalid syntax")
        return problems

    def body_schema(self, route: Route) -> dict | None:
        return next((p["schema"] for p in route.parameters if p["in"] == "body"), None)


# execute(pipeline_yaml, parameters, run_id) -> (state, failing task or None, error or None)
Executor = Callable[[str, dict, str], tuple[str, str | None, str | None]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail or message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# google.protobuf.Struct / Value and map fields: protojson writes them as they are, false, 0 and empty included
VERBATIM = frozenset({"pipeline_spec", "parameters", "inputs", "outputs"})


def _omit_empty(value):
    """protojson as grpc-gateway v1 marshals it (EmitDefaults false): unset message fields left out, the
    contents of ``VERBATIM`` fields kept as they are."""
    if isinstance(value, dict):
        out = {k: (v if k in VERBATIM else _omit_empty(v)) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ("", 0, False, None, [], {}) or (k in VERBATIM and v != {})}
    if isinstance(value, list):
        return [_omit_empty(v) for v in value]
    return value


class FakeKfp:
    def __init__(
        self,
        *,
        outcome: str = "SUCCEEDED",
        polls_before_end: int = 2,
        path: tuple[str, ...] = ("RUNNING",),
        hang: tuple[str, ...] = (),
        execute: Executor | None = None,
        fail_upload: bool = False,
        tag_name: str = VERSION,
    ) -> None:
        self.api = KfpApi()
        self.outcome = outcome
        self.path = path
        self.fail_upload = fail_upload
        self.execute = execute
        self.tag_name = tag_name
        self.finished: dict[str, tuple[str, str | None, str | None]] = {}
        self.polls_before_end = polls_before_end
        self.hang = hang
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}  # version id -> version (with its pipeline_id and the uploaded YAML)
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.calls: list[str] = []
        self.polls: dict[str, int] = {}
        self.shape_errors: list[str] = []
        self.ignored_platform_specs = 0
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, raw: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _route(self, method: str) -> None:
                path = self.path.split("?", 1)[0].removeprefix("/pipeline")
                fake.calls.append(f"{method} {path}")
                for name in fake.hang:
                    if name in path:
                        fake.stop_event.wait(60)
                        return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if path in ("", "/"):  # the UI
                    self._send(200, b"<html><body>Kubeflow Pipelines (fake)</body></html>", "text/html")
                    return
                status, answer, content_type = fake.answer(
                    method, path, self.path, body, self.headers.get("Content-Type", "")
                )
                self._send(status, answer, content_type)

            def do_GET(self):  # noqa: N802
                self._route("GET")

            def do_POST(self):  # noqa: N802
                self._route("POST")

            def do_DELETE(self):  # noqa: N802
                self._route("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pipeline"

    def __enter__(self) -> FakeKfp:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        if self.shape_errors and exc[0] is None:
            raise AssertionError("the fake answered outside KFP 2.4.0's API: " + "; ".join(self.shape_errors))

    # -- the HTTP layer: what grpc-gateway and the upload handler do --------------------------------------

    def answer(self, method: str, path: str, raw_path: str, body: bytes, content_type: str) -> tuple[int, bytes, str]:
        query = parse_qs(urlsplit(raw_path).query)
        if path == f"{API}/healthz":
            return self._json(None, 200, {"commit_sha": "fake", "tag_name": self.tag_name, "multi_user": False})
        found = self.api.match(method, path)
        if found is None:  # grpc-gateway's mux: a plain-text 404 for a path no route has
            return 404, b"Not Found\n", "text/plain; charset=utf-8"
        route, params = found
        upload = route.operation_id in ("UploadPipeline", "UploadPipelineVersion")
        try:
            problems = self.api.query_errors(route, query)
            if problems:
                raise ApiError(400, "; ".join(problems))
            request = None
            schema = self.api.body_schema(route)
            if schema is not None:
                try:
                    request = json.loads(body or b"{}")
                except ValueError as exc:
                    raise ApiError(400, f"invalid character in request body: {exc}") from None
                problems = self.api.errors(schema, request, strict=False)
                if problems:
                    raise ApiError(400, "; ".join(problems))
            with self.lock:
                status, result = 200, self.handle(route.operation_id, params, query, request, body, content_type)
        except ApiError as exc:
            if upload:
                return self._json(route, exc.status, {"error_message": exc.message, "error_details": exc.detail})
            code = GRPC.get(exc.status, 2)
            detail = {"@type": "type.googleapis.com/google.rpc.Status", "code": code, "message": exc.detail}
            return self._json(
                route, exc.status, {"error": exc.message, "code": code, "message": exc.message, "details": [detail]}
            )
        return self._json(route, status, _omit_empty(result))

    def _json(self, route: Route | None, status: int, body: dict) -> tuple[int, bytes, str]:
        problems = self.api.errors(self.api.response_schema(route, status), body, strict=True)
        if problems:
            what = route.operation_id if route else "healthz"
            self.shape_errors.append(f"{what} {status}: {problems}")
        return status, json.dumps(body).encode(), "application/json"

    # -- the service ---------------------------------------------------------------------------------------

    def handle(self, operation: str, params: dict, query: dict, request, body: bytes, content_type: str):  # noqa: C901
        q = {k: v[-1] for k, v in query.items()}
        if operation == "UploadPipeline":
            return self._upload(q.get("name", ""), body, content_type)
        if operation == "PipelineService_ListPipelines":
            return self._page("pipelines", list(self.pipelines.values()), q)
        if operation == "PipelineService_GetPipeline":
            return self._pipeline(params["pipeline_id"])
        if operation == "PipelineService_ListPipelineVersions":
            self._pipeline(params["pipeline_id"])
            found = [v for v in self.versions.values() if v["pipeline_id"] == params["pipeline_id"]]
            return self._page("pipeline_versions", [self._public(v) for v in found], q)
        if operation == "PipelineService_GetPipelineVersion":
            return self._public(self._version(params["pipeline_id"], params["pipeline_version_id"]))
        if operation == "PipelineService_DeletePipelineVersion":
            self._version(params["pipeline_id"], params["pipeline_version_id"])
            del self.versions[params["pipeline_version_id"]]
            return {}
        if operation == "PipelineService_DeletePipeline":
            pipeline_id = params["pipeline_id"]
            self._pipeline(pipeline_id)
            left = [v for v in self.versions.values() if v["pipeline_id"] == pipeline_id]
            if left:  # resource_manager.go DeletePipeline
                raise ApiError(
                    400,
                    f"Failed to delete pipeline with id {pipeline_id} as it has existing pipeline versions "
                    f"(e.g. {left[0]['pipeline_version_id']})",
                )
            del self.pipelines[pipeline_id]
            return {}
        if operation == "ExperimentService_ListExperiments":
            return self._page("experiments", list(self.experiments.values()), q)
        if operation == "ExperimentService_CreateExperiment":
            name = request.get("display_name", "")
            if not name:
                raise ApiError(400, "Invalid input error: Experiment name is empty. Please specify a valid name")
            if any(e["display_name"] == name for e in self.experiments.values()):
                raise ApiError(
                    409, f"Already exist error: Failed to create a new experiment. The name {name} already exists"
                )
            experiment = {
                "experiment_id": str(uuid.uuid4()),
                "display_name": name,
                "created_at": _now(),
                "storage_state": "AVAILABLE",
            }
            self.experiments[experiment["experiment_id"]] = experiment
            return experiment
        if operation == "ExperimentService_GetExperiment":
            return self._experiment(params["experiment_id"])
        if operation == "ExperimentService_DeleteExperiment":
            self._experiment(params["experiment_id"])
            del self.experiments[params["experiment_id"]]
            return {}
        if operation == "RunService_CreateRun":
            return self._create_run(request)
        if operation == "RunService_GetRun":
            return self._poll(self._run(params["run_id"]))
        if operation == "RunService_ListRuns":
            runs = [r for r in self.runs.values() if q.get("experiment_id") in (None, r.get("experiment_id"))]
            return self._page("runs", runs, q)
        if operation == "RunService_DeleteRun":
            self._run(params["run_id"])
            del self.runs[params["run_id"]]
            return {}
        raise ApiError(501, f"the fake does not implement {operation}")

    @staticmethod
    def _found(store: dict, key: str, kind: str, action: str, *, belongs: bool = True) -> dict:
        """``store[key]``, or the 404 2.4.0 answers (util.NewResourceNotFoundError wrapped by the server)."""
        if key not in store or not belongs:
            raise ApiError(404, f"{action}: ResourceNotFoundError: {kind} {key} not found", f"{kind} {key} not found")
        return store[key]

    def _pipeline(self, pipeline_id: str) -> dict:
        return self._found(self.pipelines, pipeline_id, "Pipeline", "Failed to get pipeline")

    def _version(self, pipeline_id: str, version_id: str) -> dict:
        belongs = self.versions.get(version_id, {}).get("pipeline_id") == pipeline_id
        return self._found(
            self.versions, version_id, "PipelineVersion", "Failed to get pipeline version", belongs=belongs
        )

    def _experiment(self, experiment_id: str) -> dict:
        return self._found(self.experiments, experiment_id, "Experiment", "Failed to get experiment")

    def _run(self, run_id: str) -> dict:
        return self._found(self.runs, run_id, "Run", f"Failed to get a run: Failed to fetch run {run_id}")

    @staticmethod
    def _public(version: dict) -> dict:
        return {k: v for k, v in version.items() if k != "yaml"}

    def _page(self, key: str, items: list[dict], q: dict[str, str]) -> dict:
        """list.go: page_size 0 is 20, above 200 is 200, negative is refused; the token is opaque."""
        size = int(q.get("page_size", 0))
        if size < 0:
            raise ApiError(400, f"Invalid input error: The page size should be greater than 0. Got {size}")
        size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        wanted = _display_name_filter(q.get("filter"))
        items = [i for i in items if wanted is None or i.get("display_name") == wanted]
        start = 0
        if q.get("page_token"):
            try:
                start = json.loads(base64.urlsafe_b64decode(q["page_token"]))["offset"]
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "Invalid input error: Invalid package token") from None
        page = items[start : start + size]
        answer = {key: page, "total_size": len(items)}
        if start + size < len(items):
            answer["next_page_token"] = base64.urlsafe_b64encode(json.dumps({"offset": start + size}).encode()).decode()
        return answer

    def _upload(self, name: str, body: bytes, content_type: str) -> dict:
        text = _uploaded_file(body, content_type)
        if text is None:
            raise ApiError(400, "Failed to create a pipeline. Failed to read a file: http: no such file")
        if self.fail_upload:
            raise ApiError(500, "Failed to create a pipeline and a pipeline version: storage unavailable")
        problems = backend.check(text, VERSION)
        spec_problems = [p for p in problems if "cannot read the pipeline spec" in p or "no document has" in p]
        schema_problems = [p for p in problems if "accepts schemaVersion" in p]
        if spec_problems:  # template.go isPipelineSpec: no document reads strictly as a PipelineSpec
            detail = "unknown template format"
        elif schema_problems:  # v2_template.go NewV2SpecTemplate
            detail = f"KFP only supports schema version 2.1.0, but the pipeline spec has version {_schema(text)}"
        else:
            detail = None
        if detail:  # resource_manager.go wraps it; the upload handler answers 500 for an InvalidInputError
            raise ApiError(
                500,
                "Failed to create a pipeline and a pipeline version: Failed to create a pipeline and a pipeline "
                f"version due to template creation error: InvalidInputError: {detail}: pipeline spec is invalid",
            )
        import yaml

        docs = [d for d in yaml.safe_load_all(text) if d]
        spec = next(d for d in docs if "pipelineInfo" in d)
        spec_name = spec["pipelineInfo"].get("name", "")
        if not PIPELINE_NAME_RE.match(spec_name):  # resource_manager.go: common.ValidatePipelineName
            raise ApiError(
                500, f"Failed to create a pipeline and a pipeline version: invalid pipeline name {spec_name!r}"
            )
        if any("cannot read the platform spec" in p for p in problems):
            # v2_template.go: a document that does not read as a PlatformSpec is not one; runs get no platform config
            self.ignored_platform_specs += 1
            text = yaml.safe_dump_all([spec])
        display = name or "pipeline"
        if any(p["display_name"] == display for p in self.pipelines.values()):
            raise ApiError(
                409,
                "Failed to create a pipeline and a pipeline version. The pipeline already exists.: "
                f"Already exist error: Failed to create a new pipeline. The name {display} already exists. "
                "Please specify a new name",
            )
        pipeline = {"pipeline_id": str(uuid.uuid4()), "display_name": display, "created_at": _now()}
        version = {
            "pipeline_id": pipeline["pipeline_id"],
            "pipeline_version_id": str(uuid.uuid4()),
            "display_name": display,
            "created_at": _now(),
            "pipeline_spec": spec,
            "yaml": text,
        }
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self.versions[version["pipeline_version_id"]] = version
        return pipeline

    def _create_run(self, request: dict) -> dict:
        if not request.get("display_name"):
            raise ApiError(
                400,
                "Failed to create a new run: Failed to create a run due to invalid name: Invalid input error: "
                "The run name is empty. Please specify a valid name",
                "The run name is empty. Please specify a valid name",
            )
        reference = request.get("pipeline_version_reference") or {}
        version = self._version(reference.get("pipeline_id", ""), reference.get("pipeline_version_id", ""))
        experiment_id = request.get("experiment_id") or ""
        if experiment_id:
            self._experiment(experiment_id)
        run_id = str(uuid.uuid4())
        run = {
            "run_id": run_id,
            "experiment_id": experiment_id,
            "display_name": request["display_name"],
            "storage_state": "AVAILABLE",
            "pipeline_version_reference": reference,
            "runtime_config": request.get("runtime_config") or {},
            "created_at": _now(),
            "scheduled_at": _now(),
            "state": "PENDING",  # resource_manager.go CreateRun
            "state_history": [{"update_time": _now(), "state": "PENDING"}],
        }
        self.runs[run_id] = run
        refused = [p for p in backend.check(version["yaml"], VERSION) if "driver cannot read" in p]
        if refused:  # cmd/driver/main.go: jsonpb refuses the task's Kubernetes config before anything runs
            task = re.search(r"config of exec-(\S+)", refused[0]).group(1)
            self.finished[run_id] = ("FAILED", task, "failed to unmarshal Kubernetes config, error: " + refused[0])
        elif self.execute:
            params = run["runtime_config"].get("parameters", {})

            def execute() -> None:
                result = self.execute(version["yaml"], params, run_id)
                with self.lock:
                    self.finished[run_id] = result

            threading.Thread(target=execute, daemon=True).start()
        return copy.deepcopy(run)

    def _set_state(self, run: dict, state: str) -> None:
        if run["state"] != state:
            run["state"] = state
            run["state_history"].append({"update_time": _now(), "state": state})
            if state in TERMINAL:
                run["finished_at"] = _now()

    def _poll(self, run: dict) -> dict:
        run_id = run["run_id"]
        self.polls[run_id] = self.polls.get(run_id, 0) + 1
        if run_id in self.finished or self.execute:
            if run_id not in self.finished:
                self._set_state(run, "RUNNING")
                return copy.deepcopy(run)
            state, task, error = self.finished[run_id]
            self._set_state(run, state)
            details = [self._task(run_id, task, "FAILED", error)] if task else []
            run["run_details"] = {"task_details": details}
            if error:
                run["error"] = {"code": 9, "message": error}
            return copy.deepcopy(run)
        polls = self.polls[run_id]
        if self.outcome == "NEVER" or polls <= self.polls_before_end:
            self._set_state(run, self.path[(polls - 1) % len(self.path)] if self.path else "RUNNING")
            return copy.deepcopy(run)
        self._set_state(run, self.outcome)
        tasks = [self._task(run_id, "load-data", "SUCCEEDED")]
        if self.outcome == "FAILED":
            tasks.append(
                self._task(run_id, "train-model", "FAILED", "train: error: cannot train: MLflow did not answer")
            )
        if self.outcome == "CANCELED":
            tasks.append(self._task(run_id, "train-model", "CANCELED"))
        run["run_details"] = {"task_details": tasks}
        return copy.deepcopy(run)

    @staticmethod
    def _task(run_id: str, name: str, state: str, error: str | None = None) -> dict:
        task = {
            "run_id": run_id,
            "task_id": str(uuid.uuid4()),
            "display_name": name,
            "state": state,
            "create_time": _now(),
        }
        if error:
            task["error"] = {"code": 2, "message": error}
        return task


def _schema(text: str) -> str:
    import yaml

    return str(next((d.get("schemaVersion") for d in yaml.safe_load_all(text) if d and "pipelineInfo" in d), ""))


def _display_name_filter(text: str | None) -> str | None:
    """The display name a ``filter`` asks for (the EQUALS predicate kfp.Client sends); None for no filter."""
    if not text:
        return None
    try:
        predicates = json.loads(text).get("predicates", [])
    except ValueError:
        raise ApiError(400, f"Invalid input error: failed to parse valid filter from {text!r}") from None
    return next(
        (p.get("string_value", p.get("stringValue")) for p in predicates if p.get("key") in ("display_name", "name")),
        None,
    )


def _uploaded_file(body: bytes, content_type: str) -> str | None:
    """The ``uploadfile`` of a multipart/form-data upload (kfp.Client sends the YAML there), or None."""
    if "multipart/form-data" not in content_type:
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            return part.get_payload(decode=True).decode()
    return None


def local_executor(env: dict[str, str], run_dir) -> Executor:
    """Run the uploaded pipeline as KFP 2.4.0 would: metro-e2e's local runner, the KFP run id as the run id,
    its output URIs laid out as that backend lays them out, runtime constants passed through as text."""
    from metro_e2e.errors import PipelineError
    from metro_e2e.pipeline.local import LocalRunner
    from metro_e2e.pipeline.spec import parse

    def execute(yaml_text: str, params: dict, run_id: str):
        runner = LocalRunner(parse(yaml_text), run_dir=run_dir, env=env, run_id=run_id, kfp_backend=VERSION)
        try:
            runner.run(params)
        except PipelineError as exc:
            return "FAILED", exc.task, exc.message.splitlines()[0]
        return "SUCCEEDED", None, None

    return execute
