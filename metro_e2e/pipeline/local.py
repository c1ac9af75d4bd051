"""Run a compiled KFP v2 pipeline YAML on this machine: no Kubernetes, no Docker.

kfp.local refuses container components without Docker (PLATFORM.md
breakage 6), so this runner does the part kfp cannot: it walks the DAG in
dependency order, evaluates ``dsl.If`` conditions, and runs each container
command as a subprocess in which ``python`` is this interpreter. Building the
executor input, resolving placeholders and reading outputs reuse kfp.local's
own code. A pipeline whose commands cannot be mapped is refused before any
task runs.
"""

from __future__ import annotations

import graphlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp.local import executor_input_utils, executor_output_utils, placeholder_utils

from metro_e2e.errors import PipelineError
from metro_e2e.pipeline import backend
from metro_e2e.pipeline.spec import JOB_ID_PLACEHOLDER, CompiledPipeline, FlatTask, load

log = logging.getLogger(__name__)

DEFAULT_TASK_TIMEOUT = 600.0
LOG_TAIL_LINES = 15
_CONDITION_RE = re.compile(r"^inputs\.parameter_values\['([^']+)'\]\s*(==|!=)\s*(.+)$")
_TYPES: dict[str, Callable[[str], Any]] = {
    "STRING": str,
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "BOOLEAN": lambda v: {"true": True, "false": False}[v.strip().lower()],
}


@dataclass
class TaskResult:
    name: str
    state: str  # SUCCEEDED | FAILED | SKIPPED | NOT_RUN
    exit_code: int | None = None
    seconds: float = 0.0
    log: Path | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    tasks: list[TaskResult]

    @property
    def succeeded(self) -> bool:
        return all(t.state in ("SUCCEEDED", "SKIPPED") for t in self.tasks)

    def summary(self) -> str:
        rows = [
            f"{t.name:16} {t.state:9} exit={'' if t.exit_code is None else t.exit_code:<4} {t.seconds:6.1f}s"
            for t in self.tasks
        ]
        return "\n".join(rows)


def parse_params(pairs: list[str], pipeline: CompiledPipeline) -> dict[str, Any]:
    """``["k=v", ...]`` -> typed values by the pipeline's parameter types; unknown names are refused."""
    definitions = pipeline.raw["root"].get("inputDefinitions", {}).get("parameters", {})
    values = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise PipelineError(f"--param {pair!r} is not NAME=VALUE")
        if name not in definitions:
            raise PipelineError(
                f"--param {name!r} is not a parameter of this pipeline",
                hint="parameters: " + ", ".join(sorted(definitions)),
            )
        kind = definitions[name].get("parameterType", "STRING")
        try:
            values[name] = _TYPES.get(kind, str)(raw)
        except (ValueError, KeyError):
            raise PipelineError(f"--param {name}={raw!r} is not a valid {kind}") from None
    return values


def map_command(command: list[str], task: str) -> list[str]:
    """The container command with ``python`` mapped to this interpreter; anything else is refused."""
    if not command or command[0] not in ("python", "python3"):
        raise PipelineError(
            f"task {task} runs {command[:1]!r}, which cannot run outside its container image",
            task=task,
            hint="only commands starting with 'python' map to this machine",
        )
    return [sys.executable, *command[1:]]


def _topological(tasks: Mapping[str, FlatTask]) -> list[str]:
    """The tasks in dependency order, a wave at a time: every task whose dependencies have run, by name.

    A dependency on a task the pipeline does not have is ignored. A cycle is refused, naming every task that
    cannot be ordered (those in the cycle and those that wait for them).
    """
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name, task in tasks.items():
        sorter.add(name, *(task.dependencies & set(tasks)))
    try:
        sorter.prepare()
        cycle = False
    except graphlib.CycleError:  # the sorter still hands out every task before the cycle
        cycle = True
    order: list[str] = []
    while ready := sorted(sorter.get_ready()):
        order.extend(ready)
        sorter.done(*ready)
    if cycle:
        pending = set(tasks) - set(order)
        raise PipelineError(f"the pipeline's tasks depend on each other in a cycle: {sorted(pending)}")
    return order


class LocalRunner:
    """Runs one compiled pipeline; see ``run_local`` for the one-call form."""

    def __init__(
        self,
        pipeline: CompiledPipeline,
        *,
        run_dir: Path,
        task_timeout: float = DEFAULT_TASK_TIMEOUT,
        env: Mapping[str, str] | None = None,
        run_id: str | None = None,
        kfp_backend: str = backend.SDK,
    ) -> None:
        self.pipeline = pipeline
        # the runtime constants a task receives resolved, as that backend's driver does (SDK: all the SDK writes)
        self.resolves_job_id = backend.resolves(kfp_backend, JOB_ID_PLACEHOLDER)
        self.run_id = run_id or f"local-{uuid.uuid4().hex[:12]}"
        self.run_dir = Path(run_dir) / self.run_id
        self.task_timeout = task_timeout
        self.env = dict(os.environ if env is None else env)
        self.outputs: dict[str, dict[str, Any]] = {}
        self.pipeline_name = pipeline.spec.pipeline_info.name or "pipeline"

    def _value(self, src: tuple, params: Mapping[str, Any]) -> Any:
        kind = src[0]
        if kind == "param":
            return params[src[1]]
        if kind == "const":
            return self.run_id if src[1] == JOB_ID_PLACEHOLDER and self.resolves_job_id else src[1]
        if kind in ("task-param", "task-artifact"):
            return self.outputs[src[1]][src[2]]
        raise PipelineError(f"cannot resolve input source {src}")

    def _condition_holds(self, task: FlatTask, params: Mapping[str, Any]) -> bool:
        for condition, scope in task.conditions:
            match = _CONDITION_RE.match(condition.strip())
            if not match or match.group(1) not in scope:
                raise PipelineError(
                    f"task {task.name}: condition {condition!r} is not supported by the local runner", task=task.name
                )
            left = self._value(scope[match.group(1)], params)
            right = json.loads(match.group(3))
            if (left == right) != (match.group(2) == "=="):
                return False
        return True

    def run(self, params: Mapping[str, Any] | None = None) -> RunResult:
        tasks = self.pipeline.flat_tasks()
        order = _topological(tasks)
        commands = {}
        for name in order:  # refuse before anything runs
            container = self.pipeline.executors.get(tasks[name].executor, {}).get("container", {})
            commands[name] = (map_command(list(container.get("command", [])), name), list(container.get("args", [])))
        values = {k: v for k, v in self.pipeline.pipeline_parameters().items()}
        values.update(params or {})
        missing = sorted(k for k, v in values.items() if v is None)
        if missing:
            raise PipelineError(
                f"pipeline parameters without a value: {', '.join(missing)}", hint="pass them with --param NAME=VALUE"
            )
        results = {name: TaskResult(name, "NOT_RUN") for name in order}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in order:
            task = tasks[name]
            if any(
                results[d].state == "SKIPPED" for d in task.dependencies if d in results
            ) or not self._condition_holds(task, values):
                results[name].state = "SKIPPED"
                continue
            results[name] = self._run_task(task, *commands[name], values)
            if results[name].state != "SUCCEEDED":
                result = RunResult(self.run_id, self.run_dir, list(results.values()))
                raise _task_failure(results[name], result)
        return RunResult(self.run_id, self.run_dir, list(results.values()))

    def _run_task(self, task: FlatTask, command: list[str], args: list[str], params: Mapping[str, Any]) -> TaskResult:
        component_spec = self.pipeline.spec.components[task.component]
        arguments = {key: self._value(src, params) for key, src in task.inputs.items()}
        # KFP 2.4.0's layout of output URIs (backend.ARTIFACT_URI_LAYOUT), under the run folder
        task_root = str(self.run_dir / self.pipeline_name / self.run_id / task.name / uuid.uuid4().hex)
        executor_input = executor_input_utils.construct_executor_input(
            component_spec=component_spec, arguments=arguments, task_root=task_root, block_input_artifact=False
        )
        full = placeholder_utils.replace_placeholders(
            full_command=[*command, *args],
            executor_input_dict=executor_input_utils.executor_input_to_dict(executor_input, component_spec),
            pipeline_resource_name=self.pipeline_name,
            task_resource_name=task.name,
            pipeline_root=str(self.run_dir),
            unique_pipeline_id=self.run_id,
        )
        Path(task_root).mkdir(parents=True, exist_ok=True)  # output artifact URIs are files in the task root
        log_path = self.run_dir / "logs" / f"{task.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(self.env)
        started = time.monotonic()
        with open(log_path, "wb") as out:
            out.write(("$ " + " ".join(full) + "\n").encode())
            out.flush()
            proc = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            try:
                code = proc.wait(timeout=self.task_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                out.write(f"\nmetro-e2e: task killed after {self.task_timeout:.0f} s\n".encode())
                return TaskResult(task.name, "FAILED", None, time.monotonic() - started, log_path)
        seconds = time.monotonic() - started
        if code != 0:
            return TaskResult(task.name, "FAILED", code, seconds, log_path)
        outputs = executor_output_utils.get_outputs_for_task(
            executor_input=executor_input, component_spec=component_spec
        )
        # A container component writes its artifacts to the paths it was given, not an executor output file.
        for name, artifacts in executor_input.outputs.artifacts.items():
            if name not in outputs:
                outputs[name] = executor_output_utils.artifact_list_to_dsl_artifact(artifacts, is_artifact_list=False)
            if not Path(outputs[name].path).exists():
                with open(log_path, "a") as out:
                    out.write(f"metro-e2e: the task exited 0 but did not write its output {name!r}\n")
                return TaskResult(task.name, "FAILED", code, seconds, log_path)
        self.outputs[task.name] = outputs
        return TaskResult(task.name, "SUCCEEDED", 0, seconds, log_path, outputs)


def _task_failure(task: TaskResult, result: RunResult) -> PipelineError:
    tail = []
    if task.log and task.log.exists():
        tail = task.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    how = "timed out" if task.exit_code is None else f"failed with exit code {task.exit_code}"
    return PipelineError(
        f"task {task.name} {how} (log {task.log}); last lines:\n    " + "\n    ".join(tail),
        task=task.name,
        result=result,
    )


def run_local(
    path: str | Path,
    *,
    params: list[str] | Mapping[str, Any] | None = None,
    run_dir: str | Path,
    task_timeout: float = DEFAULT_TASK_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> RunResult:
    """Run the compiled pipeline at ``path``; raise ``PipelineError`` naming the first task that fails."""
    pipeline = load(Path(path))
    typed = parse_params(list(params), pipeline) if isinstance(params, list) else dict(params or {})
    return LocalRunner(pipeline, run_dir=Path(run_dir), task_timeout=task_timeout, env=env).run(typed)
