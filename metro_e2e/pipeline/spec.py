"""Conformance of a compiled pipeline YAML with the step CLIs it calls.

The YAML is read with kfp's own spec types (``PipelineSpec`` and the
Kubernetes ``PlatformSpec``). ``check`` returns every problem found:

* each executor runs ``python -m metro_e2e.steps.<step>`` and its arguments
  parse with that step's real argparse parser (unknown or missing options);
* every placeholder names an input/output the component declares, and lands
  on the option of the same name;
* artifacts and the trained version are wired to the intended producer
  outputs, dependencies and caching are as intended, promotion only runs
  under the ``promote`` condition, and credentials come from the secret.
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from metro_e2e.config import SECRET_TO_ENV
from metro_e2e.data import SPLIT_NAMES
from metro_e2e.errors import InputError

STEP_PACKAGE = "metro_e2e.steps."
JOB_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
PLACEHOLDER_RE = re.compile(
    r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](?:\.(path|output_file|uri))?\}\}"
)

EXPECTED_STEPS = {"load-data": "load_data", "train-model": "train", "promote-model": "promote"}
EXPECTED_INPUTS: dict[str, dict[str, tuple]] = {
    "train-model": {f"dataset_{n}": ("task-artifact", "load-data", f"output_dataset_{n}") for n in SPLIT_NAMES},
    "promote-model": {"version": ("task-param", "train-model", "version")},
}
EXPECTED_DEPENDENCIES = {"load-data": set(), "train-model": {"load-data"}, "promote-model": {"train-model"}}
UNCACHED = {"train-model", "promote-model"}
CONDITIONED_ON = {"promote-model": "promote"}
SECRET_ENV = set(SECRET_TO_ENV.values())
# The task told the KFP run id, and the two ways it may be told (backend.py: which backend resolves what)
LINEAGE_TASK = "train-model"
LINEAGE_CONSTANT = ("lineage_tag", ("const", JOB_ID_PLACEHOLDER))
LINEAGE_URI_OPTION = "--lineage_from_uri"


@dataclass
class FlatTask:
    """A task of the pipeline with every input traced back to its origin."""

    name: str
    component: str
    executor: str
    inputs: dict[str, tuple] = field(default_factory=dict)
    dependencies: set[str] = field(default_factory=set)
    cache: bool = True
    conditions: list[tuple[str, Mapping[str, tuple]]] = field(default_factory=list)


@dataclass
class CompiledPipeline:
    spec: pipeline_spec_pb2.PipelineSpec
    platform: dict
    raw: dict

    @property
    def executors(self) -> dict[str, dict]:
        return self.raw.get("deploymentSpec", {}).get("executors", {})

    def component(self, name: str) -> dict:
        return self.raw["components"][name]

    def pipeline_parameters(self) -> dict[str, Any]:
        params = self.raw.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        return {name: p.get("defaultValue") for name, p in params.items()}

    def secret_env(self, executor: str) -> dict[str, tuple[str, str]]:
        """env var -> (secret name, key) that the Kubernetes platform spec sets for ``executor``."""
        config = self.platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})
        out = {}
        for item in config.get("executors", {}).get(executor, {}).get("secretAsEnv", []):
            for mapping in item.get("keyToEnv", []):
                out[mapping["envVar"]] = (item.get("secretName", ""), mapping["secretKey"])
        return out

    def flat_tasks(self) -> dict[str, FlatTask]:
        tasks: dict[str, FlatTask] = {}
        self._walk(self.raw["root"]["dag"], {}, set(), [], tasks)
        return tasks

    def _walk(self, dag: dict, scope: Mapping[str, tuple], deps: set[str], conds: list, out: dict) -> None:
        for name, task in dag.get("tasks", {}).items():
            inputs = {}
            for kind in ("parameters", "artifacts"):
                for key, src in task.get("inputs", {}).get(kind, {}).items():
                    inputs[key] = _source(src, scope)
            comp_name = task["componentRef"]["name"]
            comp = self.component(comp_name)
            task_deps = deps | set(task.get("dependentTasks", []))
            task_conds = list(conds)
            if "condition" in task.get("triggerPolicy", {}):
                task_conds.append((task["triggerPolicy"]["condition"], inputs))
            if "dag" in comp:
                self._walk(comp["dag"], inputs, task_deps, task_conds, out)
                continue
            out[name] = FlatTask(
                name=name,
                component=comp_name,
                executor=comp.get("executorLabel", ""),
                inputs=inputs,
                dependencies=task_deps,
                cache=bool(task.get("cachingOptions", {}).get("enableCache", False)),
                conditions=task_conds,
            )


def _source(src: dict, scope: Mapping[str, tuple]) -> tuple:
    if "componentInputParameter" in src:
        name = src["componentInputParameter"]
        return scope.get(name, ("param", name))
    if "componentInputArtifact" in src:
        name = src["componentInputArtifact"]
        return scope.get(name, ("param", name))
    if "taskOutputArtifact" in src:
        return (
            "task-artifact",
            src["taskOutputArtifact"]["producerTask"],
            src["taskOutputArtifact"]["outputArtifactKey"],
        )
    if "taskOutputParameter" in src:
        p = src["taskOutputParameter"]
        return ("task-param", p["producerTask"], p["outputParameterKey"])
    if "runtimeValue" in src:
        return ("const", src["runtimeValue"].get("constant"))
    return ("unknown", repr(src))


def load(path: str | Path) -> CompiledPipeline:
    """Read and parse the compiled pipeline YAML at ``path``."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read pipeline file {str(path)!r}: {exc.strerror}") from exc
    try:
        return parse(text)
    except InputError as exc:
        raise InputError(
            f"pipeline file {str(path)!r} is {exc.message}",
            hint="compile it with: metro-e2e pipeline compile -o FILE",
        ) from exc


def parse(text: str) -> CompiledPipeline:
    """Parse compiled pipeline YAML text with kfp's spec types."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
        spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
        platform = docs[1] if len(docs) > 1 else {}
        if platform:
            json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"not valid YAML{where} ({problem})") from exc
    except (json_format.ParseError, IndexError, TypeError, AttributeError) as exc:
        raise InputError(f"not a compiled KFP v2 pipeline: {str(exc).splitlines()[0]}") from exc
    if not spec.root.dag.tasks:
        raise InputError("not a compiled KFP v2 pipeline: it has no root DAG tasks")
    return CompiledPipeline(spec, platform, docs[0])


class _ParseFailure(Exception):
    pass


def _strict_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    def error(message: str):
        raise _ParseFailure(message)

    parser.error = error  # type: ignore[method-assign]
    return parser


def step_parser(command: list[str]) -> tuple[str | None, argparse.ArgumentParser | None, str | None]:
    """(step, its real parser, problem) for an executor command ``python -m metro_e2e.steps.<step>``."""
    if len(command) != 3 or command[:2] != ["python", "-m"] or not command[2].startswith(STEP_PACKAGE):
        return None, None, f"command {command!r} is not 'python -m {STEP_PACKAGE}<step>'"
    step = command[2][len(STEP_PACKAGE) :]
    try:
        module = importlib.import_module(command[2])
    except ImportError:
        return step, None, f"command runs {command[2]!r}, which does not exist"
    return step, _strict_parser(module.build_parser()), None


_DUMMIES = {"NUMBER_INTEGER": "7", "NUMBER_DOUBLE": "0.5", "BOOLEAN": "true"}


def _dummy(comp: dict, io: str, kind: str, name: str) -> str:
    """A stand-in value of the declared type, so typed options (``--seed``) parse."""
    definitions = comp.get("inputDefinitions" if io == "inputs" else "outputDefinitions", {}).get(kind, {})
    return _DUMMIES.get(definitions.get(name, {}).get("parameterType", ""), f"value-of-{name}")


def check_executor(pipeline: CompiledPipeline, task: FlatTask) -> list[str]:
    problems = []
    where = f"task {task.name}"
    container = pipeline.executors.get(task.executor, {}).get("container", {})
    step, parser, problem = step_parser(list(container.get("command", [])))
    if problem:
        return [f"{where}: {problem}"]
    comp = pipeline.component(task.component)
    declared = {
        ("inputs", "parameters"): set(comp.get("inputDefinitions", {}).get("parameters", {})),
        ("inputs", "artifacts"): set(comp.get("inputDefinitions", {}).get("artifacts", {})),
        ("outputs", "parameters"): set(comp.get("outputDefinitions", {}).get("parameters", {})),
        ("outputs", "artifacts"): set(comp.get("outputDefinitions", {}).get("artifacts", {})),
    }
    args = [str(a) for a in container.get("args", [])]
    dummy_args = []
    option_for: dict[str, str] = {}
    uri_options: dict[str, str] = {}
    for i, arg in enumerate(args):
        match = PLACEHOLDER_RE.fullmatch(arg)
        if not match:
            if "{{$" in arg:
                problems.append(f"{where}: unsupported placeholder {arg!r}")
            dummy_args.append(arg)
            continue
        io, kind, name, suffix = match.groups()
        if name not in declared[(io, kind)]:
            problems.append(
                f"{where}: argument {args[i - 1] if i else ''!s} uses {io}.{kind}[{name!r}], "
                f"which the component does not declare"
            )
        if suffix == "uri":  # only the lineage takes a URI; the data itself comes as .path
            uri_options[name] = args[i - 1] if i else ""
        else:
            option_for[name] = args[i - 1] if i else ""
        dummy_args.append(_dummy(comp, io, kind, name))
    try:
        parsed = parser.parse_args(dummy_args)
    except _ParseFailure as exc:
        return [*problems, f"{where}: python -m {STEP_PACKAGE}{step} rejects the arguments: {exc}"]
    values = vars(parsed)
    for name, option in option_for.items():
        dest = next((a.dest for a in parser._actions if option in a.option_strings), None)  # noqa: SLF001
        if dest is None:
            problems.append(f"{where}: placeholder for {name!r} follows {option!r}, which the step does not accept")
        elif dest not in (name, f"output_{name}") or values.get(dest) is None:
            problems.append(f"{where}: {option} receives {name!r}; expected the value named {dest!r}")
    for name, option in uri_options.items():
        if option != LINEAGE_URI_OPTION:
            problems.append(f"{where}: {option} receives the URI of {name!r}; only {LINEAGE_URI_OPTION} takes a URI")
    return problems


def lineage_problem(pipeline: CompiledPipeline, task: FlatTask) -> str | None:
    """Why ``task`` is not told the KFP run id, or None: ``--lineage_tag`` from the job-id placeholder, or
    ``--lineage_from_uri`` with the URI of one of the task's own output artifacts (an input's URI would be an
    earlier run's after a cache hit on the task that wrote it)."""
    if task.inputs.get(LINEAGE_CONSTANT[0]) == LINEAGE_CONSTANT[1]:
        return None
    args = [str(a) for a in pipeline.executors.get(task.executor, {}).get("container", {}).get("args", [])]
    outputs = pipeline.component(task.component).get("outputDefinitions", {}).get("artifacts", {})
    for option, value in zip(args, args[1:], strict=False):
        match = PLACEHOLDER_RE.fullmatch(value)
        if option == LINEAGE_URI_OPTION and match and match.group(1, 2, 4) == ("outputs", "artifacts", "uri"):
            if match.group(3) in outputs:
                return None
    return (
        f"task {task.name}: not told the KFP run id (--lineage_tag {JOB_ID_PLACEHOLDER}, or "
        f"{LINEAGE_URI_OPTION} with the URI of one of its own output artifacts)"
    )


def check(pipeline: CompiledPipeline) -> list[str]:
    """Every way ``pipeline`` differs from the Iris pipeline the steps expect (empty = conforms)."""
    problems: list[str] = []
    tasks = pipeline.flat_tasks()
    params = pipeline.pipeline_parameters()
    missing = sorted(set(EXPECTED_STEPS) - set(tasks))
    problems += [f"task {name} is missing" for name in missing]
    for task in tasks.values():
        problems += check_executor(pipeline, task)
        for key, src in task.inputs.items():
            if key in params and src != ("param", key) and key not in EXPECTED_INPUTS.get(task.name, {}):
                problems.append(f"task {task.name}: input {key!r} comes from {src}, not pipeline parameter {key!r}")
        for key, expected in EXPECTED_INPUTS.get(task.name, {}).items():
            if task.inputs.get(key) != expected:
                problems.append(
                    f"task {task.name}: input {key!r} is wired to {task.inputs.get(key)}, expected {expected}"
                )
        if task.name == LINEAGE_TASK and (problem := lineage_problem(pipeline, task)):
            problems.append(problem)
        want = EXPECTED_DEPENDENCIES.get(task.name)
        if want is not None and not want <= task.dependencies:
            problems.append(f"task {task.name}: runs without waiting for {sorted(want - task.dependencies)}")
        if task.name in UNCACHED and task.cache:
            problems.append(f"task {task.name}: caching is on; it must run every time")
        if task.name in CONDITIONED_ON:
            param = CONDITIONED_ON[task.name]
            guarded = any(
                ("param", param) in scope.values() and "== true" in cond.replace("True", "true")
                for cond, scope in task.conditions
            )
            if not guarded:
                problems.append(f"task {task.name}: not guarded by the {param!r} pipeline parameter")
        env = pipeline.secret_env(task.executor)
        if not SECRET_ENV <= set(env):
            problems.append(f"task {task.name}: S3 credentials {sorted(SECRET_ENV - set(env))} not set from a secret")
    for name in params:
        if any(word in name.lower() for word in ("secret", "password", "access_key")):
            problems.append(f"pipeline parameter {name!r} looks like a credential; credentials come from a secret")
    return problems
