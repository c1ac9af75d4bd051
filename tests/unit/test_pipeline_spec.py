"""The compiled pipeline: deterministic, equal to the golden copy, and conforming to the step CLIs.

Mutation tests prove the conformance check fails on each kind of breakage.
Refresh the golden copy with: metro-e2e pipeline compile -o fixtures/iris_pipeline.yaml
"""

from __future__ import annotations

import copy
import textwrap

import pytest
import yaml

from metro_e2e.errors import InputError, PipelineError
from metro_e2e.pipeline import compile_pipeline, spec
from metro_e2e.pipeline.local import LocalRunner, _topological, map_command, parse_params

REFRESH = "metro-e2e pipeline compile -o fixtures/iris_pipeline.yaml"


@pytest.fixture(scope="module")
def golden_text(request) -> str:
    return (request.config.rootpath / "fixtures" / "iris_pipeline.yaml").read_text()


def _mutate(text: str, change) -> spec.CompiledPipeline:
    docs = [d for d in yaml.safe_load_all(text) if d]
    docs = copy.deepcopy(docs)
    change(*docs)
    return spec.parse(yaml.safe_dump_all(docs))


def test_compile_is_deterministic_and_matches_golden(tmp_path, golden_text):
    a = compile_pipeline(tmp_path / "a.yaml")
    b = compile_pipeline(tmp_path / "b.yaml")
    assert a.read_text() == b.read_text()
    assert a.read_text() == golden_text, f"the pipeline changed: review the diff and refresh with `{REFRESH}`"


def test_image_is_configurable(tmp_path):
    text = compile_pipeline(tmp_path / "p.yaml", image="registry.test/metro/step:42").read_text()
    images = {e["container"]["image"] for e in spec.parse(text).executors.values()}
    assert images == {"registry.test/metro/step:42"}


def test_golden_conforms(golden_text):
    pipeline = spec.parse(golden_text)
    assert spec.check(pipeline) == []
    tasks = pipeline.flat_tasks()
    assert set(tasks) == {"load-data", "train-model", "promote-model"}
    assert not tasks["train-model"].cache and not tasks["promote-model"].cache
    args = pipeline.executors["exec-train-model"]["container"]["args"]
    assert args[args.index("--lineage_from_uri") + 1] == "{{$.outputs.artifacts['result'].uri}}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda d, p: d["deploymentSpec"]["executors"]["exec-train-model"]["container"]["args"].__setitem__(
                0, "--dataset_trainX"
            ),
            "rejects the arguments",
            id="renamed-argument",
        ),
        pytest.param(
            lambda d, p: d["root"]["dag"]["tasks"]["train-model"].pop("dependentTasks"),
            "runs without waiting for ['load-data']",
            id="dropped-dependency",
        ),
        pytest.param(
            lambda d, p: d["root"]["dag"]["tasks"]["train-model"]["inputs"]["artifacts"]["dataset_train_X"][
                "taskOutputArtifact"
            ].__setitem__("outputArtifactKey", "output_dataset_test_X"),
            "input 'dataset_train_X' is wired to ('task-artifact', 'load-data', 'output_dataset_test_X')",
            id="miswired-artifact",
        ),
        pytest.param(
            lambda d, p: d["root"]["dag"]["tasks"]["train-model"].__setitem__("cachingOptions", {"enableCache": True}),
            "caching is on",
            id="train-cached",
        ),
        pytest.param(
            lambda d, p: d["root"]["dag"]["tasks"]["condition-1"].pop("triggerPolicy"),
            "not guarded by the 'promote'",
            id="promote-unconditional",
        ),
        pytest.param(
            lambda d, p: p["platforms"]["kubernetes"]["deploymentSpec"]["executors"].pop("exec-load-data"),
            "S3 credentials",
            id="no-secret",
        ),
        pytest.param(
            lambda d, p: d["deploymentSpec"]["executors"]["exec-load-data"]["container"].__setitem__(
                "command", ["python", "/app/load_data.py"]
            ),
            "is not 'python -m metro_e2e.steps.<step>'",
            id="published-script-path",
        ),
        pytest.param(
            lambda d, p: d["deploymentSpec"]["executors"]["exec-promote-model"]["container"]["args"].__setitem__(
                8, "--model_name"
            ),
            "--model_name receives 'version'",
            id="argument-swapped-onto-wrong-option",
        ),
    ],
)
def test_each_breakage_fails_the_check(golden_text, change, expected):
    problems = spec.check(_mutate(golden_text, change))
    assert any(expected in p for p in problems), problems


def test_breakage_7_published_output_name_mismatch_fails(golden_text):
    """The guide's load_data signature declares output_dataset_train while its args use output_dataset_train_X."""

    def rename_output(doc, platform):
        outputs = doc["components"]["comp-load-data"]["outputDefinitions"]["artifacts"]
        outputs["output_dataset_train"] = outputs.pop("output_dataset_train_X")

    problems = spec.check(_mutate(golden_text, rename_output))
    assert any(
        "uses outputs.artifacts['output_dataset_train_X'], which the component does not declare" in p for p in problems
    ), problems


def test_breakage_7_published_dsl_does_not_even_compile():
    source = textwrap.dedent("""
        from kfp import dsl
        from kfp.dsl import Output, Dataset

        @dsl.container_component
        def load_data(output_dataset_train: Output[Dataset], output_dataset_test: Output[Dataset],
                      output_dataset_train_y: Output[Dataset], output_dataset_test_y: Output[Dataset]):
            return dsl.ContainerSpec(image='timsmans/metro-mlops-demo:latest', command=['python', '/app/load_data.py'],
                                     args=['--output_dataset_train_X', output_dataset_train_X.path])
    """)
    with pytest.raises(NameError, match="output_dataset_train_X"):
        exec(compile(source, "published_pipeline.py", "exec", dont_inherit=True), {})


def test_not_a_pipeline_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not valid YAML at line 2, column 2"):
        spec.parse("a: [1, 2\nb: c\n")
    with pytest.raises(InputError, match="not a compiled KFP v2 pipeline"):
        spec.parse("pipelineInfo:\n  name: x\nnot_a_field: 1\n")
    with pytest.raises(InputError, match="cannot read pipeline file"):
        spec.load(tmp_path / "missing.yaml")


def test_unmappable_command_is_refused_before_any_task_runs(golden_text, tmp_path):
    def shell(doc, platform):
        doc["deploymentSpec"]["executors"]["exec-promote-model"]["container"]["command"] = ["/bin/sh", "-c", "x"]

    runner = LocalRunner(_mutate(golden_text, shell), run_dir=tmp_path)
    with pytest.raises(PipelineError, match="task promote-model runs \\['/bin/sh'\\]"):
        runner.run({})
    assert not any(tmp_path.iterdir()), "nothing may run when one command cannot be mapped"
    assert map_command(["python", "-m", "x"], "t")[1:] == ["-m", "x"]


def test_params_are_typed_and_unknown_ones_refused(golden_text):
    pipeline = spec.parse(golden_text)
    assert parse_params(["seed=3", "promote=true", "data_key=a=b.csv"], pipeline) == {
        "seed": 3,
        "promote": True,
        "data_key": "a=b.csv",
    }
    with pytest.raises(PipelineError, match="'colour' is not a parameter"):
        parse_params(["colour=red"], pipeline)
    with pytest.raises(PipelineError, match="not a valid NUMBER_INTEGER"):
        parse_params(["seed=many"], pipeline)
    with pytest.raises(PipelineError, match="not NAME=VALUE"):
        parse_params(["seed"], pipeline)


def test_tasks_run_a_wave_at_a_time_by_name_and_a_cycle_is_refused(golden_text):
    tasks = spec.parse(golden_text).flat_tasks()
    assert _topological(tasks) == ["load-data", "train-model", "promote-model"]

    def task(name, *deps):
        return spec.FlatTask(name=name, component="c", executor="e", dependencies=set(deps))

    waves = {t.name: t for t in [task("c", "a", "b"), task("b"), task("a"), task("d", "not-a-task"), task("e", "c")]}
    assert _topological(waves) == ["a", "b", "d", "c", "e"]  # a dependency the pipeline lacks is ignored
    cyclic = {**waves, **{t.name: t for t in [task("x", "y"), task("y", "x", "c"), task("z", "x")]}}
    with pytest.raises(PipelineError, match=r"depend on each other in a cycle: \['x', 'y', 'z'\]$"):
        _topological(cyclic)  # the tasks in the cycle and those waiting for it, not those before it
