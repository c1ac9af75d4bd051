"""The pipeline as KFP backend 2.4.0 reads it: that backend's own protos, and what its driver and launcher resolve.

The protos are the ones backend 2.4.0's go.mod pins (kubeflow/pipelines ``api`` at 873e9de,
``kubernetes_platform`` at d911c8b); the committed descriptor set must be what they compile to.
Each breakage below is a way a spec can read fine to the kfp SDK and still not run on 2.4.0.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.resources
import pathlib

import google.rpc
import pytest
import yaml
from google.protobuf import descriptor_pb2

from metro_e2e.cli import main
from metro_e2e.errors import InputError
from metro_e2e.pipeline import backend, compile_pipeline, spec
from metro_e2e.pipeline.backend import run_id_from_artifact_uri

B = backend.BACKENDS["2.4.0"]


@pytest.fixture(scope="module")
def golden_text(request) -> str:
    return (request.config.rootpath / "fixtures" / "iris_pipeline.yaml").read_text()


@pytest.fixture(scope="module")
def sdk_text(tmp_path_factory) -> str:
    return compile_pipeline(tmp_path_factory.mktemp("sdk") / "p.yaml", kfp_backend=backend.SDK).read_text()


def _mutated(text: str, change) -> str:
    docs = copy.deepcopy([d for d in yaml.safe_load_all(text) if d])
    change(*docs)
    return yaml.safe_dump_all(docs)


def test_the_committed_protos_are_the_ones_backend_2_4_0_pins():
    for name, (upstream, commit, sha256) in B.protos.items():
        text = (B.directory / name).read_bytes()
        assert hashlib.sha256(text).hexdigest() == sha256, f"{name} is not {upstream} at {commit}"


def test_the_descriptor_set_is_what_the_committed_protos_compile_to(tmp_path):
    from grpc_tools import protoc

    out = tmp_path / "set.binpb"
    includes = [
        str(B.directory),
        str(pathlib.Path(google.rpc.__path__[0]).parent.parent),  # google/rpc/status.proto
        str(importlib.resources.files("grpc_tools") / "_proto"),  # google/protobuf/*.proto
    ]
    code = protoc.main(
        ["protoc", *(f"-I{i}" for i in includes), "--include_imports", f"--descriptor_set_out={out}", *B.protos]
    )
    assert code == 0
    built = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    committed = descriptor_pb2.FileDescriptorSet.FromString((B.directory / "descriptors.binpb").read_bytes())
    assert built == committed, "regenerate descriptors.binpb from the .proto files (docs/pipeline.md)"


def test_the_pipeline_compiled_for_2_4_0_is_one_it_reads(golden_text):
    assert backend.check(golden_text, "2.4.0") == []
    assert spec.check(spec.parse(golden_text)) == []


def test_what_sdk_2_17_writes_is_not_what_2_4_0_runs(sdk_text):
    """kfp-kubernetes 2.17 adds two SecretAsEnv fields the 2.4.0 driver's jsonpb refuses, and the run-id
    placeholder reaches the step as text: every task would fail in the driver, and the lineage would be wrong."""
    problems = backend.check(sdk_text, "2.4.0")
    assert problems == [
        *(
            f"KFP 2.4.0's driver cannot read the Kubernetes config of exec-{task} (jsonpb): Failed to parse "
            'secretAsEnv field: Message type "kfp_kubernetes.SecretAsEnv" has no field named "optional" at '
            '"KubernetesExecutorConfig.secretAsEnv[0]".'
            for task in ("load-data", "promote-model", "train-model")
        ),
        "KFP 2.4.0's driver passes {{$.pipeline_job_uuid}} to task train-model input 'lineage_tag' as the literal text",
    ]
    assert spec.check(spec.parse(sdk_text)) == [], "the SDK's form still fits the step CLIs"


def _executors(platform):
    return platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda d, p: d["root"]["inputDefinitions"]["parameters"]["seed"].__setitem__("literals", [42, 7]),
            "KFP 2.4.0's upload cannot read the pipeline spec (PipelineSpec at its pinned api): Failed to parse root "
            "field: Failed to parse inputDefinitions field: Failed to parse parameters field: Message type "
            '"ml_pipelines.ComponentInputsSpec.ParameterSpec" has no field named "literals"',
            id="literals-newer-than-2.4.0",
        ),
        pytest.param(
            lambda d, p: d.__setitem__("schemaVersion", "2.0.0"),
            "KFP 2.4.0's upload accepts schemaVersion 2.1.0 only; the spec has '2.0.0'",
            id="schema-version",
        ),
        pytest.param(
            lambda d, p: p["platforms"]["kubernetes"].__setitem__("pipelineConfig", {"workspace": {"size": "1Gi"}}),
            "KFP 2.4.0's upload cannot read the platform spec: Failed to parse platforms field: Failed to parse "
            'pipelineConfig field: Message type "ml_pipelines.PipelineConfig" has no field named "workspace"',
            id="platform-field-newer-than-2.4.0",
        ),
        pytest.param(
            lambda d, p: _executors(p)["exec-load-data"]["secretAsEnv"][0].__setitem__("optional", True),
            "KFP 2.4.0's driver cannot read the Kubernetes config of exec-load-data (jsonpb)",
            id="optional-secret",
        ),
        pytest.param(
            lambda d, p: d["deploymentSpec"]["executors"]["exec-load-data"]["container"]["args"].extend(
                ["--run_name", "{{$.pipeline_job_name}}"]
            ),
            "KFP 2.4.0's launcher does not substitute {{$.pipeline_job_name}} (in exec-load-data)",
            id="job-name-in-args",
        ),
        pytest.param(
            lambda d, p: d["root"]["dag"]["tasks"]["load-data"]["inputs"]["parameters"].__setitem__(
                "seed", {"runtimeValue": {"constant": "{{$.pipeline_task_uuid}}"}}
            ),
            "KFP 2.4.0's driver passes {{$.pipeline_task_uuid}} to task load-data input 'seed' as the literal text",
            id="task-id-constant",
        ),
    ],
)
def test_each_thing_2_4_0_cannot_read_is_named(golden_text, change, expected):
    problems = backend.check(_mutated(golden_text, change), "2.4.0")
    assert any(p.startswith(expected) for p in problems), problems


def test_only_fields_that_mean_what_2_4_0_does_anyway_are_taken_out(sdk_text):
    platform = next(d for d in yaml.safe_load_all(sdk_text) if d and "platforms" in d)
    secret = _executors(platform)["exec-load-data"]["secretAsEnv"][0]
    secret["optional"] = True  # 2.4.0 cannot make a secret optional
    _executors(platform)["exec-train-model"]["secretAsEnv"][0]["secretNameParameter"] = {
        "componentInputParameter": "secret"  # 2.4.0 cannot take the name from a parameter
    }
    adapted = backend.for_backend(copy.deepcopy(platform), "2.4.0")
    assert _executors(adapted)["exec-load-data"]["secretAsEnv"][0]["optional"] is True
    assert "secretNameParameter" in _executors(adapted)["exec-train-model"]["secretAsEnv"][0]
    kept = _executors(adapted)["exec-promote-model"]["secretAsEnv"][0]
    assert set(kept) == {"secretName", "keyToEnv"}
    assert backend.for_backend(copy.deepcopy(platform), backend.SDK) == platform


def test_the_run_id_comes_from_the_uri_2_4_0_writes():
    uri = "minio://mlpipeline/v2/artifacts/metro-e2e-iris/5a3e-run/train-model/9c1d-salt/result"
    path = "/minio/mlpipeline/v2/artifacts/metro-e2e-iris/5a3e-run/train-model/9c1d-salt/result"  # the launcher's
    assert run_id_from_artifact_uri(uri, path) == "5a3e-run"
    for bad in ("/tmp/x/result", "{{$.outputs.artifacts['result'].uri}}", ""):
        with pytest.raises(InputError, match="is not a KFP artifact URI"):
            run_id_from_artifact_uri(bad, path)
    elsewhere = "/minio/mlpipeline/v2/artifacts/metro-e2e-iris/other-run/train-model/9c1d-salt/result"
    with pytest.raises(InputError, match="does not name the file this step writes"):
        run_id_from_artifact_uri(uri, elsewhere)  # laid out otherwise: refused, not read at the wrong place
    with pytest.raises(InputError, match="does not name the file this step writes"):
        run_id_from_artifact_uri("gs://b/root/p/run/extra/train-model/salt/result", path)


def test_the_train_step_refuses_a_lineage_uri_without_the_file_it_names(tmp_path, capsys):
    from metro_e2e.steps import train

    args = [f"--dataset_{n}={tmp_path}/{n}.csv" for n in ("train_X", "test_X", "train_y", "test_y")]
    code = train.main([*args, "--lineage_from_uri", "minio://b/v2/artifacts/p/r/t/s/result"])
    assert code == InputError.exit_code
    assert "--lineage_from_uri needs --output_result" in capsys.readouterr().err


def test_a_train_step_not_told_the_run_id_fails_the_spec_check(golden_text):
    def drop(doc, platform):
        args = doc["deploymentSpec"]["executors"]["exec-train-model"]["container"]["args"]
        i = args.index("--lineage_from_uri")
        del args[i : i + 2]

    not_told = (
        "task train-model: not told the KFP run id (--lineage_tag {{$.pipeline_job_uuid}}, or --lineage_from_uri "
        "with the URI of one of its own output artifacts)"
    )
    assert spec.check(spec.parse(_mutated(golden_text, drop))) == [not_told]

    def input_uri(doc, platform):  # an input's URI is an earlier run's after a cache hit on load-data
        args = doc["deploymentSpec"]["executors"]["exec-train-model"]["container"]["args"]
        args[args.index("--lineage_from_uri") + 1] = "{{$.inputs.artifacts['dataset_train_X'].uri}}"

    assert not_told in spec.check(spec.parse(_mutated(golden_text, input_uri)))

    def uri_elsewhere(doc, platform):
        args = doc["deploymentSpec"]["executors"]["exec-train-model"]["container"]["args"]
        args[args.index("--lineage_from_uri")] = "--experiment"

    problems = spec.check(spec.parse(_mutated(golden_text, uri_elsewhere)))
    assert "task train-model: --experiment receives the URI of 'result'; only --lineage_from_uri takes a URI" in (
        problems
    )


def test_pipeline_check_names_the_backend_and_fails_on_what_it_cannot_read(tmp_path, capsys, sdk_text, golden_text):
    good, bad = tmp_path / "good.yaml", tmp_path / "sdk.yaml"
    good.write_text(golden_text)
    bad.write_text(sdk_text)
    assert main(["pipeline", "check", str(good), "--backend", "2.4.0"]) == 0
    assert capsys.readouterr().out.endswith("conforms to the step CLIs and what KFP 2.4.0 reads\n")
    assert main(["pipeline", "check", str(bad)]) == 10  # 2.4.0, the platform's, unless told otherwise
    out = capsys.readouterr().out
    assert out.count('has no field named "optional"') == 3 and out.endswith("sdk.yaml: 4 problem(s)\n")
    assert main(["pipeline", "check", str(bad), "--backend", "sdk"]) == 0
