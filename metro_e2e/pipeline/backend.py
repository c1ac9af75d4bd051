"""What a KFP backend version reads: its own protos, and the placeholders its driver and launcher resolve.

A compiled pipeline reaches a KFP backend three times. The API server's upload
parses the pipeline spec and the platform spec with ``protojson`` (unknown
fields are an error); the driver parses each task's Kubernetes executor config
with ``jsonpb`` (unknown fields are an error) and resolves runtime constants;
the launcher substitutes placeholders in the container's command and args.
Each backend is declared once in ``BACKENDS`` with the protos its ``go.mod``
pins (compiled into ``kfp_backends/<version>/descriptors.binpb`` from the
``.proto`` files beside it) and what its Go source resolves, so a check can
say, without a cluster, what that backend would refuse or pass through
untouched.

``for_backend`` rewrites what the kfp SDK emits into what the backend reads,
but only where the meaning is kept; anything else is left for ``check`` to
report.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROTO_DIR = Path(__file__).parent / "kfp_backends"
# where KFP 2.4.0's driver puts a task's output (driver.go provisionOutputs, metadata/client.go GenerateOutputURI)
ARTIFACT_URI_LAYOUT = "<pipeline root>/<pipeline name>/<run id>/<task>/<salt>/<artifact>"
SDK = "sdk"  # "as the kfp SDK emits it": for backends that resolve what the SDK writes (not proven here)


@dataclass(frozen=True)
class Backend:
    """One KFP backend version, as its source reads a compiled pipeline (each fact cites the file it comes from)."""

    version: str
    # kubeflow/pipelines commits that the backend's go.mod pins, and the sha256 of each .proto there
    protos: dict[str, tuple[str, str, str]]  # file -> (upstream path, commit, sha256)
    # backend/src/apiserver/template/v2_template.go: SCHEMA_VERSION_2_1_0 is the only one accepted
    schema_version: str
    # backend/src/v2/component/launcher_v2.go getPlaceholders: the forms substituted in command and args
    arg_placeholders: tuple[str, ...]
    # backend/src/v2/driver/driver.go resolveInputs: runtime constants replaced by a value (none in 2.4.0)
    constant_placeholders: frozenset[str]

    @property
    def directory(self) -> Path:
        return PROTO_DIR / self.version


_NAME = r"[^'\]]+"
BACKENDS = {
    "2.4.0": Backend(
        version="2.4.0",
        protos={
            "pipeline_spec.proto": (
                "api/v2alpha1/pipeline_spec.proto",
                "873e9dedd766137409920cb72834705043601c7a",
                "a95b4e8afc352bfc65af69858b3bf3a3744cfba06872e1ef88948d415ceae1ca",
            ),
            "kubernetes_executor_config.proto": (
                "kubernetes_platform/proto/kubernetes_executor_config.proto",
                "d911c8b73b49cd0a4ffda132f494f31d0d48095a",
                "555446026b89d4064caaead1a85f882678f8c8c8395cfe34b12a27692b12ec13",
            ),
        },
        schema_version="2.1.0",
        arg_placeholders=(
            r"\{\{\$\}\}",
            rf"\{{\{{\$\.inputs\.artifacts\['{_NAME}'\]\.(uri|path)\}}\}}",
            rf"\{{\{{\$\.outputs\.artifacts\['{_NAME}'\]\.(uri|path)\}}\}}",
            rf"\{{\{{\$\.inputs\.parameters\['{_NAME}'\]\}}\}}",
            rf"\{{\{{\$\.outputs\.parameters\['{_NAME}'\]\.output_file\}}\}}",
        ),
        constant_placeholders=frozenset(),
    ),
}
DEFAULT_BACKEND = "2.4.0"  # the platform's (PLATFORM.md)
CHOICES = (*BACKENDS, SDK)
_ANY_PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")


def resolves(version: str, placeholder: str) -> bool:
    """Whether backend ``version``'s driver replaces the runtime constant ``placeholder`` (``SDK``: the SDK's
    form is for a backend that resolves everything the SDK writes)."""
    return version == SDK or placeholder in BACKENDS[version].constant_placeholders


@dataclass(frozen=True)
class Messages:
    """The backend's message classes, from its own descriptors (a private pool: the SDK's stay untouched)."""

    pool: Any
    pipeline_spec: type
    platform_spec: type
    kubernetes_executor_config: type


@functools.cache
def messages(version: str) -> Messages:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    backend = BACKENDS[version]
    files = descriptor_pb2.FileDescriptorSet.FromString((backend.directory / "descriptors.binpb").read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)

    def cls(name: str) -> type:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

    return Messages(
        pool,
        cls("ml_pipelines.PipelineSpec"),
        cls("ml_pipelines.PlatformSpec"),
        cls("kfp_kubernetes.KubernetesExecutorConfig"),
    )


def _parse(document: Any, message: type, pool: Any) -> str | None:
    """None if ``document`` parses as ``message`` with unknown fields refused, else the first line of why not."""
    from google.protobuf import json_format

    try:
        json_format.ParseDict(document, message(), descriptor_pool=pool)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        return " ".join(str(exc).split(" Available Fields")[0].split())
    return None


def _documents(text: str) -> tuple[dict, dict]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    spec = next((d for d in docs if isinstance(d, dict) and {"pipelineInfo", "root"} <= set(d)), {})
    platform = next((d for d in docs if isinstance(d, dict) and "platforms" in d), {})
    return spec, platform


def _strings(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _constants(spec: dict):
    """(task, input, value) of every runtime constant given to a task, in the root DAG and every sub-DAG."""
    dags = [("root", spec.get("root", {}).get("dag", {}))]
    dags += [(name, c.get("dag", {})) for name, c in spec.get("components", {}).items() if "dag" in c]
    for _, dag in dags:
        for task_name, task in dag.get("tasks", {}).items():
            for key, src in task.get("inputs", {}).get("parameters", {}).items():
                constant = src.get("runtimeValue", {}).get("constant")
                if isinstance(constant, str):
                    yield task_name, key, constant


def kubernetes_executors(platform: dict) -> dict[str, Any]:
    """executor label -> its Kubernetes executor config, from the platform spec document."""
    kubernetes = platform.get("platforms", {}).get("kubernetes", {})
    return kubernetes.get("deploymentSpec", {}).get("executors", {}) or {}


def check(text: str, version: str = DEFAULT_BACKEND) -> list[str]:
    """Every way KFP backend ``version`` would refuse the compiled pipeline ``text`` or run it otherwise."""
    backend = BACKENDS[version]
    found = messages(version)
    where = f"KFP {version}"
    spec, platform = _documents(text)
    if not spec:
        return [f"{where}: no document has pipelineInfo and root; the upload answers 'unknown template format'"]
    problems = []
    why = _parse(spec, found.pipeline_spec, found.pool)
    if why:
        problems.append(f"{where}'s upload cannot read the pipeline spec (PipelineSpec at its pinned api): {why}")
    if spec.get("schemaVersion") != backend.schema_version:
        problems.append(
            f"{where}'s upload accepts schemaVersion {backend.schema_version} only; the spec has "
            f"{spec.get('schemaVersion')!r}"
        )
    if platform:
        why = _parse(platform, found.platform_spec, found.pool)
        if why:
            problems.append(f"{where}'s upload cannot read the platform spec: {why}")
        for label, config in sorted(kubernetes_executors(platform).items()):
            why = _parse(config, found.kubernetes_executor_config, found.pool)
            if why:
                problems.append(f"{where}'s driver cannot read the Kubernetes config of {label} (jsonpb): {why}")
    supported = [re.compile(p) for p in backend.arg_placeholders]
    for label, executor in sorted(spec.get("deploymentSpec", {}).get("executors", {}).items()):
        container = executor.get("container", {})
        for arg in [*container.get("command", []), *container.get("args", [])]:
            for placeholder in _ANY_PLACEHOLDER.findall(str(arg)):
                if not any(p.fullmatch(placeholder) for p in supported):
                    problems.append(f"{where}'s launcher does not substitute {placeholder} (in {label})")
    for task, key, constant in _constants(spec):
        for placeholder in _ANY_PLACEHOLDER.findall(constant):
            if placeholder not in backend.constant_placeholders:
                problems.append(
                    f"{where}'s driver passes {placeholder} to task {task} input {key!r} as the literal text"
                )
    return problems


def for_backend(platform: dict, version: str) -> dict:
    """The platform spec ``platform`` (a dict) with what the SDK adds, and ``version`` does not read, taken out.

    Only fields whose value is what the backend does anyway are removed: a secret's ``optional: false``
    (2.4.0 makes every secret variable required) and ``secretNameParameter`` when it is the constant
    equal to ``secretName`` (2.4.0 reads ``secretName``). Anything else stays, for ``check`` to report.
    """
    if version == SDK:
        return platform
    for config in kubernetes_executors(platform).values():
        for secret in config.get("secretAsEnv", []):
            if secret.get("optional") is False:
                del secret["optional"]
            parameter = secret.get("secretNameParameter", {}).get("runtimeValue", {}).get("constant")
            if parameter is not None and parameter == secret.get("secretName"):
                del secret["secretNameParameter"]
    return platform


def run_id_from_artifact_uri(uri: str, written_to: str) -> str:
    """The KFP run id in the URI of the artifact a step of a KFP 2.4 run writes to ``written_to``.

    KFP 2.4.0's driver puts a task's outputs at ``ARTIFACT_URI_LAYOUT``; that backend does not
    resolve ``{{$.pipeline_job_uuid}}``, so this is how a step there learns its run id. The URI must name the
    file the step writes (the launcher's local path for a URI ends with the URI's own path), so a URI laid out
    any other way is refused (``InputError``), not read at the wrong place.
    """
    from metro_e2e.errors import InputError

    layout = ARTIFACT_URI_LAYOUT.split("/")
    tail = len(layout) - layout.index("<run id>")  # run id, task, salt, artifact
    parts = [p for p in uri.split("?", 1)[0].split("/") if p]
    written = [p for p in str(written_to).split("/") if p]
    if len(parts) < len(layout) or "{{" in uri:
        raise InputError(f"--lineage_from_uri {uri!r} is not a KFP artifact URI ({ARTIFACT_URI_LAYOUT})")
    if written[-tail:] != parts[-tail:]:
        raise InputError(
            f"--lineage_from_uri {uri!r} does not name the file this step writes ({written_to!r}); "
            f"the run id is read from {ARTIFACT_URI_LAYOUT}"
        )
    return parts[-tail]
