"""A fake KFP v2beta1 REST server on loopback: the calls metro_e2e.kfp makes, and the ways a backend misbehaves.

``outcome`` decides how runs end (SUCCEEDED, FAILED with a failing task, CANCELED, or never);
``hang`` makes chosen endpoints sleep past any client timeout.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# execute(pipeline_yaml, parameters, run_id) -> (state, failing task or None, error or None)
Executor = Callable[[str, dict, str], tuple[str, str | None, str | None]]


class FakeKfp:
    def __init__(
        self,
        *,
        outcome: str = "SUCCEEDED",
        polls_before_end: int = 2,
        hang: tuple[str, ...] = (),
        execute: Executor | None = None,
        fail_upload: bool = False,
    ) -> None:
        self.outcome = outcome
        self.fail_upload = fail_upload
        self.execute = execute
        self.finished: dict[str, tuple[str, str | None, str | None]] = {}
        self.polls_before_end = polls_before_end
        self.hang = hang
        self.pipelines: dict[str, dict] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.calls: list[str] = []
        self.polls: dict[str, int] = {}
        self.stop_event = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
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
                    raw = b"<html><body>Kubeflow Pipelines (fake)</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                status, answer = fake.handle(method, path, self.path, body, self.headers.get("Content-Type", ""))
                self._send(status, answer)

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

    def handle(self, method: str, path: str, raw_path: str, body: bytes, content_type: str = ""):  # noqa: C901
        api = "/apis/v2beta1"
        if path == f"{api}/healthz":
            return 200, {"commit_sha": "fake", "tag_name": "2.4.0", "multi_user": False}
        if path == f"{api}/pipelines/upload" and method == "POST":
            if self.fail_upload:
                return 500, {"error": "failed to upload pipeline: storage unavailable", "code": 13}
            name = re.search(r"name=([^&]+)", raw_path)
            pid, vid = uuid.uuid4().hex, uuid.uuid4().hex
            self.pipelines[pid] = {
                "pipeline_id": pid,
                "display_name": name.group(1) if name else "p",
                "version": vid,
                "yaml": _uploaded_file(body, content_type),
            }
            return 200, {"pipeline_id": pid, "display_name": self.pipelines[pid]["display_name"]}
        m = re.fullmatch(rf"{api}/pipelines/([^/]+)/versions", path)
        if m and method == "GET":
            p = self.pipelines.get(m.group(1))
            if not p:
                return 404, {"error": "no such pipeline"}
            return 200, {
                "pipeline_versions": [{"pipeline_id": p["pipeline_id"], "pipeline_version_id": p["version"]}],
                "total_size": 1,
            }
        m = re.fullmatch(rf"{api}/pipelines/([^/]+)/versions/([^/]+)", path)
        if m and method == "DELETE":
            return 200, {}
        m = re.fullmatch(rf"{api}/pipelines/([^/]+)", path)
        if m and method == "DELETE":
            self.pipelines.pop(m.group(1), None)
            return 200, {}
        if path == f"{api}/pipelines" and method == "GET":  # kfp.Client.get_pipeline_id: filtered by display_name
            wanted = _display_name_filter(raw_path)
            found = [p for p in self.pipelines.values() if wanted is None or p["display_name"] == wanted]
            listed = [{"pipeline_id": p["pipeline_id"], "display_name": p["display_name"]} for p in found]
            return 200, {"pipelines": listed, "total_size": len(listed)}
        if path == f"{api}/experiments" and method == "GET":
            wanted = _display_name_filter(raw_path)
            found = [e for e in self.experiments.values() if wanted is None or e["display_name"] == wanted]
            return 200, {"experiments": found, "total_size": len(found)}
        if path == f"{api}/experiments" and method == "POST":
            experiment = {"experiment_id": uuid.uuid4().hex, "display_name": json.loads(body).get("display_name")}
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        m = re.fullmatch(rf"{api}/experiments/([^/]+)", path)
        if m and method == "DELETE":
            self.experiments.pop(m.group(1), None)
            return 200, {}
        if path == f"{api}/runs" and method == "POST":
            rid = uuid.uuid4().hex
            request = json.loads(body)
            self.runs[rid] = {"run_id": rid, "display_name": request.get("display_name"), "state": "PENDING"}
            if self.execute:
                pid = request.get("pipeline_version_reference", {}).get("pipeline_id")
                params = request.get("runtime_config", {}).get("parameters", {})
                yaml_text = self.pipelines[pid]["yaml"]

                def run() -> None:
                    self.finished[rid] = self.execute(yaml_text, params, rid)

                threading.Thread(target=run, daemon=True).start()
            return 200, self.runs[rid]
        m = re.fullmatch(rf"{api}/runs/([^/]+)", path)
        if m and method == "GET":
            return 200, self._poll(m.group(1))
        return 404, {"error": f"fake KFP has no route {method} {path}"}

    def _poll(self, run_id: str) -> dict:
        run = dict(self.runs[run_id])
        if self.execute:
            if run_id not in self.finished:
                run["state"] = "RUNNING"
                return run
            state, task, error = self.finished[run_id]
            run["state"] = state
            details = [{"display_name": task, "state": "FAILED", "error": {"message": error}}] if task else []
            run["run_details"] = {"task_details": details}
            return run
        self.polls[run_id] = self.polls.get(run_id, 0) + 1
        if self.outcome == "NEVER" or self.polls[run_id] <= self.polls_before_end:
            run["state"] = "RUNNING"
            return run
        run["state"] = self.outcome
        tasks = [{"display_name": "load-data", "state": "SUCCEEDED"}]
        if self.outcome == "FAILED":
            tasks.append(
                {
                    "display_name": "train-model",
                    "state": "FAILED",
                    "error": {"code": 2, "message": "train: error: cannot train: MLflow did not answer"},
                }
            )
        if self.outcome == "CANCELED":
            tasks.append({"display_name": "train-model", "state": "CANCELED"})
        run["run_details"] = {"task_details": tasks}
        return run


def _display_name_filter(raw_path: str) -> str | None:
    """The display name a ``filter`` query parameter asks for (the EQUALS predicate kfp.Client sends)."""
    from urllib.parse import parse_qs, urlsplit

    text = parse_qs(urlsplit(raw_path).query).get("filter", [None])[0]
    if not text:
        return None
    predicates = json.loads(text).get("predicates", [])
    return next((p.get("stringValue") for p in predicates if p.get("key") == "display_name"), None)


def _uploaded_file(body: bytes, content_type: str) -> str:
    """The file of a multipart/form-data upload (kfp.Client sends the YAML as ``uploadfile``)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    for part in message.iter_parts():
        if part.get_filename() or part.get_param("name", header="content-disposition") == "uploadfile":
            return part.get_payload(decode=True).decode()
    return ""


def local_executor(env: dict[str, str], run_dir) -> Executor:
    """Run the uploaded pipeline with metro-e2e's local runner, the KFP run id as the pipeline job id."""
    from metro_e2e.errors import PipelineError
    from metro_e2e.pipeline.local import LocalRunner
    from metro_e2e.pipeline.spec import parse

    def execute(yaml_text: str, params: dict, run_id: str):
        runner = LocalRunner(parse(yaml_text), run_dir=run_dir, env=env, run_id=run_id)
        try:
            runner.run(params)
        except PipelineError as exc:
            return "FAILED", exc.task, exc.message.splitlines()[0]
        return "SUCCEEDED", None, None

    return execute
