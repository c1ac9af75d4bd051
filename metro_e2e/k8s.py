"""The suite inside the cluster: the manifests of a Job that runs ``metro-e2e check``, and serving's restart.

``render`` builds the objects with the Kubernetes Python client's models: a ServiceAccount, the Role and
RoleBinding the mode needs (none by default; with ``--allow-promote`` only ``get`` and ``patch`` of the
``mlflow-model-deployment`` Deployment in ``kubeflow``, what SRV-5's restart does), and a Job that runs
``check`` against the in-cluster gateway with the MinIO credentials from the secret
``mlpipeline-minio-artifact``. ``--as helm-test`` makes them Helm test hooks; ``--as sonobuoy`` gives a
Sonobuoy plugin definition instead. What a mode needs is declared once (``NEEDED_RULES``): ``render``
grants it and ``least_privilege_problems`` refuses anything more.

``restart_deployment`` is ``kubectl rollout restart`` and ``rollout status`` with those two verbs: the
Job passes ``metro-e2e k8s restart`` as ``--restart-serving``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from metro_e2e import __version__
from metro_e2e.config import CREDENTIALS_SECRET, IN_CLUSTER_URL, SECRET_TO_ENV
from metro_e2e.errors import ConfigError, MetroE2EError
from metro_e2e.pipeline import DEFAULT_IMAGE

NAME = "metro-e2e"
DEFAULT_NAMESPACE = "kubeflow"  # where the platform's secret mlpipeline-minio-artifact lives
SERVING_NAMESPACE = "kubeflow"
SERVING_DEPLOYMENT = "mlflow-model-deployment"
RESULTS_DIR = "/results"
SONOBUOY_RESULTS_DIR = "/tmp/sonobuoy/results"  # Sonobuoy's pkg/plugin/constants.go ResultsDir
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"  # what kubectl rollout restart sets
FORMS = ("job", "helm-test", "sonobuoy")
JOB_DEADLINE_S = 3600  # the KFP run timeout (1800 s) and the rest of the clauses, with room


@dataclass(frozen=True)
class Rule:
    """One RBAC rule a mode needs: in ``namespace``, these verbs on these named objects, and nothing else."""

    namespace: str
    api_group: str
    resource: str
    names: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str


# What each mode needs from the Kubernetes API. The read and write clauses use the gateway only.
NEEDED_RULES: dict[bool, tuple[Rule, ...]] = {
    False: (),
    True: (
        Rule(
            SERVING_NAMESPACE,
            "apps",
            "deployments",
            (SERVING_DEPLOYMENT,),
            ("get", "patch"),
            "SRV-5 restarts serving (patch the pod template) and waits for the rollout (get)",
        ),
    ),
}


def _client():
    from kubernetes import client

    return client


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/version": __version__}


def check_command(*, allow_promote: bool, results_dir: str, step_image: str | None) -> list[str]:
    """The ``metro-e2e check`` the Job runs (against the in-cluster gateway, reports in ``results_dir``)."""
    command = ["metro-e2e", "check", "--url", IN_CLUSTER_URL, "--results-dir", results_dir, "--log-json"]
    if step_image:
        command += ["--step-image", step_image]
    if allow_promote:
        restart = f"metro-e2e k8s restart --namespace {SERVING_NAMESPACE} --deployment {SERVING_DEPLOYMENT}"
        command += ["--allow-promote", "--restart-serving", restart]
    return command


def _container(image: str, command: list[str], *, name: str = NAME, own_volumes: bool = True):
    """The check's container; ``own_volumes``: it mounts the Job's results and /tmp folders and its root
    filesystem is read-only (Sonobuoy mounts its own results folder into a plugin)."""
    c = _client()
    env = [
        c.V1EnvVar(
            name=variable,
            value_from=c.V1EnvVarSource(secret_key_ref=c.V1SecretKeySelector(name=CREDENTIALS_SECRET, key=key)),
        )
        for key, variable in SECRET_TO_ENV.items()
    ]
    env.append(c.V1EnvVar(name="HOME", value="/tmp"))
    return c.V1Container(
        name=name,
        image=image,
        command=command,
        env=env,
        volume_mounts=[
            c.V1VolumeMount(name="results", mount_path=RESULTS_DIR),
            c.V1VolumeMount(name="tmp", mount_path="/tmp"),
        ]
        if own_volumes
        else None,
        security_context=c.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=own_volumes,
            run_as_non_root=True,
            run_as_user=10001,
            capabilities=c.V1Capabilities(drop=["ALL"]),
            seccomp_profile=c.V1SeccompProfile(type="RuntimeDefault"),
        ),
        resources=c.V1ResourceRequirements(
            requests={"cpu": "500m", "memory": "1Gi"}, limits={"cpu": "2", "memory": "2Gi"}
        ),
    )


def render(
    *,
    namespace: str = DEFAULT_NAMESPACE,
    image: str = DEFAULT_IMAGE,
    allow_promote: bool = False,
    form: str = "job",
    step_image: str | None = None,
) -> list[Any]:
    """The objects (Kubernetes client models) that run the suite in the cluster, in the order to apply them."""
    if form not in FORMS:
        raise ConfigError(
            f"--as {form!r} is not a form metro-e2e renders", setting="as", source="--as", hint=f"one of {FORMS}"
        )
    c = _client()
    step_image = step_image or image
    if form == "sonobuoy":
        return [sonobuoy_plugin(image=image, allow_promote=allow_promote, step_image=step_image)]
    rules = NEEDED_RULES[allow_promote]
    objects: list[Any] = [
        c.V1ServiceAccount(
            api_version="v1",
            kind="ServiceAccount",
            metadata=c.V1ObjectMeta(name=NAME, namespace=namespace, labels=_labels()),
            automount_service_account_token=bool(rules),
        )
    ]
    for rule in rules:
        meta = c.V1ObjectMeta(
            name=NAME, namespace=rule.namespace, labels=_labels(), annotations={"metro-e2e/why": rule.why}
        )
        objects.append(
            c.V1Role(
                api_version="rbac.authorization.k8s.io/v1",
                kind="Role",
                metadata=meta,
                rules=[
                    c.V1PolicyRule(
                        api_groups=[rule.api_group],
                        resources=[rule.resource],
                        resource_names=list(rule.names),
                        verbs=list(rule.verbs),
                    )
                ],
            )
        )
        objects.append(
            c.V1RoleBinding(
                api_version="rbac.authorization.k8s.io/v1",
                kind="RoleBinding",
                metadata=c.V1ObjectMeta(name=NAME, namespace=rule.namespace, labels=_labels()),
                role_ref=c.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=NAME),
                subjects=[c.RbacV1Subject(kind="ServiceAccount", name=NAME, namespace=namespace)],
            )
        )
    command = check_command(allow_promote=allow_promote, results_dir=RESULTS_DIR, step_image=step_image)
    pod = c.V1PodSpec(
        service_account_name=NAME,
        automount_service_account_token=bool(rules),
        restart_policy="Never",
        containers=[_container(image, command)],
        volumes=[
            c.V1Volume(name="results", empty_dir=c.V1EmptyDirVolumeSource()),
            c.V1Volume(name="tmp", empty_dir=c.V1EmptyDirVolumeSource()),
        ],
        security_context=c.V1PodSecurityContext(run_as_non_root=True, fs_group=10001),
    )
    job = c.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=c.V1ObjectMeta(name=NAME, namespace=namespace, labels=_labels()),
        spec=c.V1JobSpec(
            backoff_limit=0,  # a failed check is a verdict, not a reason to run it again
            active_deadline_seconds=JOB_DEADLINE_S,
            ttl_seconds_after_finished=86400,
            template=c.V1PodTemplateSpec(
                # Istio's sidecar would keep the pod, and so the Job, running after the check ends
                metadata=c.V1ObjectMeta(labels=_labels(), annotations={"sidecar.istio.io/inject": "false"}),
                spec=pod,
            ),
        ),
    )
    objects.append(job)
    if form == "helm-test":
        for weight, obj in enumerate(objects):  # Helm creates test hooks by weight, then waits for the Job
            annotations = dict(obj.metadata.annotations or {})
            annotations.update(
                {
                    "helm.sh/hook": "test",
                    "helm.sh/hook-weight": str(weight - len(objects) + 1),
                    "helm.sh/hook-delete-policy": "before-hook-creation",
                }
            )
            obj.metadata.annotations = annotations
    return objects


def sonobuoy_plugin(*, image: str, allow_promote: bool, step_image: str) -> dict:
    """A Sonobuoy plugin definition (``sonobuoy run --plugin FILE``): the check writes its reports to Sonobuoy's
    results folder and then names that folder in the ``done`` file, whose JUnit file Sonobuoy reads."""
    c = _client()
    check = check_command(allow_promote=allow_promote, results_dir=SONOBUOY_RESULTS_DIR, step_image=step_image)
    import shlex

    script = (
        f'{shlex.join(check)}; code=$?; printf %s "{SONOBUOY_RESULTS_DIR}" > "{SONOBUOY_RESULTS_DIR}/done"; exit $code'
    )
    container = _container(image, ["/bin/sh", "-c", script], name="plugin", own_volumes=False)
    return {
        "sonobuoy-config": {
            "driver": "Job",
            "plugin-name": NAME,
            "result-format": "junit",
            "result-files": ["junit.xml"],
            "description": "metro-e2e: one verdict per clause of the Metro platform contract",
            "source-url": "https://github.com/metro/metro-e2e",
        },
        "spec": c.ApiClient().sanitize_for_serialization(container),
    }


def to_documents(objects: list[Any]) -> list[dict]:
    from kubernetes import client

    api = client.ApiClient()
    return [o if isinstance(o, dict) else api.sanitize_for_serialization(o) for o in objects]


def to_yaml(objects: list[Any]) -> str:
    import yaml

    return yaml.safe_dump_all(to_documents(objects), sort_keys=False)


def least_privilege_problems(documents: list[dict], *, allow_promote: bool) -> list[str]:
    """Every grant in ``documents`` beyond what the mode needs (``NEEDED_RULES``), every need not granted to the
    Job's ServiceAccount, and every binding or account that lets anything else in."""
    needed = {
        (r.namespace, r.api_group, r.resource, name, verb)
        for r in NEEDED_RULES[allow_promote]
        for name in r.names
        for verb in r.verbs
    }
    problems: list[str] = []
    accounts = [d for d in documents if d.get("kind") == "ServiceAccount"]
    account = (accounts[0]["metadata"].get("namespace"), accounts[0]["metadata"].get("name")) if accounts else None
    if len(accounts) != 1:
        problems.append(f"{len(accounts)} ServiceAccounts rendered; the Job needs exactly its own")
    roles: dict[tuple, set] = {}
    for doc in documents:
        kind, meta = doc.get("kind"), doc.get("metadata", {})
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        if kind in ("ClusterRole", "ClusterRoleBinding"):
            problems.append(f"{kind} {meta.get('name')}: no mode needs a cluster-wide grant")
        if kind == "Role":
            grants = roles.setdefault((meta.get("namespace"), meta.get("name")), set())
            for rule in doc.get("rules", []):
                for group in rule.get("apiGroups", []):
                    for resource in rule.get("resources", []):
                        for name in rule.get("resourceNames") or ["*"]:
                            for verb in rule.get("verbs", []):
                                grant = (meta.get("namespace"), group, resource, name, verb)
                                grants.add(grant)
                                if grant not in needed:
                                    problems.append(
                                        f"Role {where} grants {verb} on {resource} {name!r} ({group or 'core'}), "
                                        "which this mode does not need"
                                    )
    granted: set = set()
    for doc in documents:
        if doc.get("kind") != "RoleBinding":
            continue
        meta, ref = doc.get("metadata", {}), doc.get("roleRef", {})
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        target = (meta.get("namespace"), ref.get("name"))
        if ref.get("kind") != "Role" or target not in roles:
            problems.append(f"RoleBinding {where} binds {ref.get('kind')} {ref.get('name')}, not a Role rendered here")
            continue
        subjects = [(s.get("kind"), s.get("namespace"), s.get("name")) for s in doc.get("subjects") or []]
        others = [s for s in subjects if account is None or s != ("ServiceAccount", *account)]
        if others:
            problems.append(f"RoleBinding {where} also binds {others}; only the Job's ServiceAccount may be bound")
        if account is not None and ("ServiceAccount", *account) in subjects:
            granted |= roles[target]
    for doc in documents:
        if doc.get("kind") == "ServiceAccount" and doc.get("automountServiceAccountToken", True) and not needed:
            problems.append("the ServiceAccount mounts an API token, and this mode makes no API call")
        if doc.get("kind") == "Job":
            pod, meta = doc["spec"]["template"]["spec"], doc.get("metadata", {})
            if account is not None and (meta.get("namespace"), pod.get("serviceAccountName")) != account:
                problems.append(
                    f"the Job runs as {meta.get('namespace')}/{pod.get('serviceAccountName')}, not the "
                    f"ServiceAccount rendered here ({account[0]}/{account[1]})"
                )
            if pod.get("automountServiceAccountToken", True) and not needed:
                problems.append("the Job's pod mounts an API token, and this mode makes no API call")
    for grant in sorted(needed - granted):
        problems.append(
            f"nothing grants the Job's ServiceAccount {grant[4]} on {grant[2]} {grant[3]!r} in {grant[0]}, "
            "which this mode needs"
        )
    return problems


# -- serving's restart, as kubectl rollout restart + rollout status with get and patch only ---------------------


def restart_deployment(
    namespace: str,
    name: str,
    *,
    timeout_s: float = 300.0,
    poll_s: float = 2.0,
    apps_api: Any = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Restart Deployment ``namespace/name`` and wait until its new pods are all available; what it saw."""
    from metro_e2e._poll import NotYet, PollTimeout, poll

    if apps_api is None:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        apps_api = client.AppsV1Api()
    from kubernetes.client.rest import ApiException

    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: stamp}}}}}
    try:
        patched = apps_api.patch_namespaced_deployment(name, namespace, patch, _request_timeout=(5, 30))
    except ApiException as exc:
        raise MetroE2EError(
            f"cannot restart deployment {namespace}/{name}: the API answered {exc.status} {exc.reason}",
            hint="the Role rendered by 'metro-e2e k8s render --allow-promote' grants get and patch on it",
        ) from None
    generation = patched.metadata.generation or 0

    def rolled_out():
        try:
            d = apps_api.read_namespaced_deployment(name, namespace, _request_timeout=(5, 30))
        except ApiException as exc:
            return NotYet(f"the API answered {exc.status} {exc.reason}")
        s, want = d.status, d.spec.replicas if d.spec.replicas is not None else 1
        seen = (
            f"generation {s.observed_generation}/{generation}, {s.updated_replicas or 0} updated, "
            f"{s.available_replicas or 0} available, {s.unavailable_replicas or 0} unavailable of {want}"
        )
        if progress:
            progress(seen)
        done = (
            (s.observed_generation or 0) >= generation
            and (s.updated_replicas or 0) == want
            and (s.available_replicas or 0) == want
            and not s.unavailable_replicas
            and (s.replicas or 0) == want
        )
        return seen if done else NotYet(seen)

    try:
        seen = poll(rolled_out, timeout_s=timeout_s, interval_s=poll_s, what=f"deployment {namespace}/{name}")
    except PollTimeout as exc:
        raise MetroE2EError(
            f"deployment {namespace}/{name} did not roll out within {timeout_s:.0f} s; last seen: {exc.seen}"
        ) from None
    return f"restarted {namespace}/{name}: {seen}"
