"""The suite as an in-cluster Job: every rendered object is one the Kubernetes client's models read back unchanged,
its RBAC is the least its mode needs, its command is one ``check`` accepts, and serving's restart uses only the
verbs the Role grants (against an HTTP fake of the API server)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from kubernetes import client

from metro_e2e import k8s
from metro_e2e.cli import build_parser
from metro_e2e.config import CREDENTIALS_SECRET, IN_CLUSTER_URL, SECRET_TO_ENV
from metro_e2e.conformance.options import from_arguments
from metro_e2e.errors import MetroE2EError

pytest_plugins = ["pytest_httpserver"]
MODELS = {"ServiceAccount": "V1ServiceAccount", "Role": "V1Role", "RoleBinding": "V1RoleBinding", "Job": "V1Job"}
MODES = [pytest.param(False, id="default"), pytest.param(True, id="allow-promote")]


class _Response:
    def __init__(self, document: dict) -> None:
        self.data = json.dumps(document)


def _read_back(document: dict, model: str) -> dict:
    """The document as the client's model reads it and writes it again: a field the model does not have is lost."""
    api = client.ApiClient()
    return api.sanitize_for_serialization(api.deserialize(_Response(document), model))


def _docs(**kw) -> list[dict]:
    return k8s.to_documents(k8s.render(**kw))


@pytest.mark.parametrize("allow_promote", MODES)
@pytest.mark.parametrize("form", ["job", "helm-test"])
def test_every_object_is_one_the_kubernetes_models_read_back_unchanged(form, allow_promote):
    docs = _docs(form=form, allow_promote=allow_promote)
    assert [d["kind"] for d in docs] == ["ServiceAccount", *(["Role", "RoleBinding"] if allow_promote else []), "Job"]
    for doc in docs:
        assert _read_back(doc, MODELS[doc["kind"]]) == doc


def test_a_misplaced_field_would_not_go_unnoticed():
    job = _docs()[-1]
    job["spec"]["template"]["spec"]["containers"][0]["secretKeyRef"] = {"name": "x"}  # belongs under env[].valueFrom
    assert _read_back(job, "V1Job") != job


@pytest.mark.parametrize("allow_promote", MODES)
@pytest.mark.parametrize("form", ["job", "helm-test"])
def test_the_rbac_is_the_least_the_mode_needs(form, allow_promote):
    docs = _docs(form=form, allow_promote=allow_promote)
    assert k8s.least_privilege_problems(docs, allow_promote=allow_promote) == []
    roles = [d for d in docs if d["kind"] == "Role"]
    if not allow_promote:
        assert roles == [] and docs[0]["automountServiceAccountToken"] is False
        return
    assert [(r["metadata"]["namespace"], r["rules"]) for r in roles] == [
        (
            "kubeflow",
            [
                {
                    "apiGroups": ["apps"],
                    "resources": ["deployments"],
                    "resourceNames": ["mlflow-model-deployment"],
                    "verbs": ["get", "patch"],
                }
            ],
        )
    ]


def _role(docs):
    return next(d for d in docs if d["kind"] == "Role")


def _binding(docs):
    return next(d for d in docs if d["kind"] == "RoleBinding")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda docs: _role(docs)["rules"][0]["verbs"].append("delete"),
            "Role kubeflow/metro-e2e grants delete on deployments 'mlflow-model-deployment' (apps), which this mode "
            "does not need",
            id="extra-verb",
        ),
        pytest.param(
            lambda docs: _role(docs)["rules"][0].pop("resourceNames"),
            "Role kubeflow/metro-e2e grants get on deployments '*' (apps), which this mode does not need",
            id="every-deployment",
        ),
        pytest.param(
            lambda docs: _role(docs)["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
            "Role kubeflow/metro-e2e grants get on secrets '*' (core), which this mode does not need",
            id="secrets",
        ),
        pytest.param(
            lambda docs: docs.append({"kind": "ClusterRoleBinding", "metadata": {"name": "metro-e2e-admin"}}),
            "ClusterRoleBinding metro-e2e-admin: no mode needs a cluster-wide grant",
            id="cluster-wide",
        ),
        pytest.param(
            lambda docs: _role(docs)["rules"][0].__setitem__("verbs", ["get"]),
            "nothing grants the Job's ServiceAccount patch on deployments 'mlflow-model-deployment' in kubeflow, "
            "which this mode needs",
            id="restart-not-granted",
        ),
        pytest.param(
            lambda docs: _binding(docs)["roleRef"].__setitem__("name", "admin-existing"),
            "RoleBinding kubeflow/metro-e2e binds Role admin-existing, not a Role rendered here",
            id="binds-another-role",
        ),
        pytest.param(
            lambda docs: _binding(docs)["roleRef"].update(kind="ClusterRole", name="admin"),
            "RoleBinding kubeflow/metro-e2e binds ClusterRole admin, not a Role rendered here",
            id="binds-a-cluster-role",
        ),
        pytest.param(
            lambda docs: _binding(docs)["subjects"].append(
                {"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}
            ),
            "RoleBinding kubeflow/metro-e2e also binds [('Group', None, 'system:authenticated')]; only the Job's "
            "ServiceAccount may be bound",
            id="extra-subject",
        ),
        pytest.param(
            lambda docs: docs.remove(_binding(docs)),
            "nothing grants the Job's ServiceAccount get on deployments 'mlflow-model-deployment' in kubeflow, "
            "which this mode needs",
            id="role-not-bound",
        ),
        pytest.param(
            lambda docs: docs[-1]["spec"]["template"]["spec"].__setitem__("serviceAccountName", "pipeline-runner"),
            "the Job runs as kubeflow/pipeline-runner, not the ServiceAccount rendered here (kubeflow/metro-e2e)",
            id="another-account",
        ),
    ],
)
def test_a_grant_beyond_the_mode_is_named(change, expected):
    docs = _docs(allow_promote=True)
    change(docs)
    assert expected in k8s.least_privilege_problems(docs, allow_promote=True)


def test_a_token_in_the_default_mode_is_named():
    docs = _docs()
    docs[-1]["spec"]["template"]["spec"]["automountServiceAccountToken"] = True
    assert k8s.least_privilege_problems(docs, allow_promote=False) == [
        "the Job's pod mounts an API token, and this mode makes no API call"
    ]
    problems = k8s.least_privilege_problems(_docs(allow_promote=True), allow_promote=False)
    assert any(p.startswith("Role kubeflow/metro-e2e grants get") for p in problems) and any(
        "mounts an API token" in p for p in problems
    ), "the promote mode's Role is more than the default mode needs"


@pytest.mark.parametrize("allow_promote", MODES)
def test_the_job_runs_a_check_its_parser_accepts_against_the_in_cluster_gateway(allow_promote):
    job = _docs(namespace="metro", image="registry.test/metro-e2e:1", allow_promote=allow_promote)[-1]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.test/metro-e2e:1" and job["metadata"]["namespace"] == "metro"
    command = container["command"]
    assert command[:2] == ["metro-e2e", "check"]
    options = from_arguments(build_parser().parse_args(command[1:]))
    assert options.url == IN_CLUSTER_URL and options.log_json and options.allow_promote is allow_promote
    assert (options.report_json, options.junit_xml, options.evidence_dir) == (
        "/results/report.json",
        "/results/junit.xml",
        "/results/evidence",
    )
    assert options.step_image == "registry.test/metro-e2e:1"
    if allow_promote:
        restart = options.restart_serving.split()
        assert build_parser().parse_args(restart[1:]).func.__name__ == "_k8s_restart"
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert secrets == {env: {"name": CREDENTIALS_SECRET, "key": key} for key, env in SECRET_TO_ENV.items()}
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert job["spec"]["template"]["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}


def test_helm_test_hooks_create_the_rbac_before_the_job():
    docs = _docs(form="helm-test", allow_promote=True)
    hooks = [(d["kind"], d["metadata"]["annotations"]) for d in docs]
    assert all(
        a["helm.sh/hook"] == "test" and a["helm.sh/hook-delete-policy"] == "before-hook-creation" for _, a in hooks
    )
    weights = [int(a["helm.sh/hook-weight"]) for _, a in hooks]
    assert weights == sorted(weights) and len(set(weights)) == len(weights) and hooks[-1][0] == "Job"


def test_the_sonobuoy_plugin_writes_its_results_and_names_them_in_the_done_file(tmp_path):
    (plugin,) = _docs(form="sonobuoy")
    config = plugin["sonobuoy-config"]
    assert (config["driver"], config["plugin-name"], config["result-format"], config["result-files"]) == (
        "Job",
        "metro-e2e",
        "junit",
        ["junit.xml"],
    )
    assert _read_back(plugin["spec"], "V1Container") == plugin["spec"]
    shell, flag, script = plugin["spec"]["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    # run the script with a stand-in metro-e2e that writes a JUnit file and fails, in a folder of our own
    results = tmp_path / "results"
    results.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "metro-e2e"
    stub.write_text('#!/bin/sh\necho "$@" > "$RESULTS/args"\necho "<testsuite/>" > "$RESULTS/junit.xml"\nexit 1\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RESULTS": str(results)}
    done = subprocess.run(
        [shell, flag, script.replace(k8s.SONOBUOY_RESULTS_DIR, str(results))], env=env, timeout=30, check=False
    )
    assert done.returncode == 1, "the check's exit code is the plugin's"
    assert (results / "done").read_text() == str(results)
    assert f"--results-dir {results} --log-json" in (results / "args").read_text()


def _deployment(generation: int, observed: int, updated: int, available: int, replicas: int = 1) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "mlflow-model-deployment", "namespace": "kubeflow", "generation": generation},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "m"}},
            "template": {"metadata": {"labels": {"app": "m"}}, "spec": {"containers": [{"name": "m", "image": "m"}]}},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
            **({"unavailableReplicas": replicas - available} if available < replicas else {}),
        },
    }


def _apps_api(httpserver) -> client.AppsV1Api:
    configuration = client.Configuration(host=httpserver.url_for("").rstrip("/"))
    return client.AppsV1Api(client.ApiClient(configuration))


PATH = "/apis/apps/v1/namespaces/kubeflow/deployments/mlflow-model-deployment"


def test_restart_patches_the_pod_template_and_waits_for_the_rollout_with_get_and_patch_only(httpserver):
    httpserver.expect_ordered_request(PATH, method="PATCH").respond_with_json(_deployment(5, 4, 1, 1))
    httpserver.expect_ordered_request(PATH, method="GET").respond_with_json(_deployment(5, 4, 1, 1))
    httpserver.expect_ordered_request(PATH, method="GET").respond_with_json(_deployment(5, 5, 1, 0))
    httpserver.expect_ordered_request(PATH, method="GET").respond_with_json(_deployment(5, 5, 1, 1))
    lines: list[str] = []
    said = k8s.restart_deployment(
        "kubeflow",
        "mlflow-model-deployment",
        timeout_s=10,
        poll_s=0.01,
        apps_api=_apps_api(httpserver),
        progress=lines.append,
    )
    assert (
        said == "restarted kubeflow/mlflow-model-deployment: generation 5/5, 1 updated, 1 available, 0 unavailable of 1"
    )
    assert len(lines) == 3
    patch = json.loads(httpserver.log[0][0].get_data())
    assert list(patch["spec"]["template"]["metadata"]["annotations"]) == [k8s.RESTART_ANNOTATION]
    verbs = {{"PATCH": "patch", "GET": "get"}[request.method] for request, _ in httpserver.log}
    (rule,) = k8s.NEEDED_RULES[True]
    assert verbs == set(rule.verbs), "the restart uses exactly the verbs the rendered Role grants"


def test_restart_that_never_rolls_out_says_what_it_last_saw(httpserver):
    httpserver.expect_request(PATH, method="PATCH").respond_with_json(_deployment(2, 1, 0, 1))
    httpserver.expect_request(PATH, method="GET").respond_with_json(_deployment(2, 2, 0, 1))
    with pytest.raises(MetroE2EError, match=r"did not roll out within 0 s; last seen: generation 2/2, 0 updated"):
        k8s.restart_deployment(
            "kubeflow", "mlflow-model-deployment", timeout_s=0.2, poll_s=0.05, apps_api=_apps_api(httpserver)
        )


def test_restart_refused_by_rbac_names_the_role_to_apply(httpserver):
    httpserver.expect_request(PATH, method="PATCH").respond_with_json({"kind": "Status", "code": 403}, status=403)
    with pytest.raises(MetroE2EError, match=r"answered 403 .*grants get and patch on it"):
        k8s.restart_deployment("kubeflow", "mlflow-model-deployment", timeout_s=1, apps_api=_apps_api(httpserver))


def test_render_prints_yaml_the_models_read(capsys):
    import yaml

    from metro_e2e.cli import main

    assert main(["k8s", "render", "--namespace", "ns1", "--allow-promote", "--as", "helm-test"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Role", "RoleBinding", "Job"]
    assert docs[2]["subjects"] == [{"kind": "ServiceAccount", "name": "metro-e2e", "namespace": "ns1"}]
    assert k8s.least_privilege_problems(docs, allow_promote=True) == []
