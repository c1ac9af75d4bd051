"""The MLflow clauses (and KFP-1) fail on each realistic way their promise breaks, and only they fail.

The seeded stack (``SeededStacks``), broken through gateway faults and repaired after each test; the MLflow 3
server without ``--allowed-hosts`` and the proxied artifact store need stacks of their own. The KFP clauses
after KFP-1 are proven against a fake KFP in ``test_check_kfp.py``.
"""

from __future__ import annotations

import pytest

from metro_e2e.stack.gateway import Fault

from .checking import broken_gateway, check, expect_outcome

UI_PAGE = "<!doctype html><html><body><div id='root'></div></body></html>"
S3_DENIED = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>'
MLFLOW_API = r"^/mlflow/api/2\.0/mlflow/"


def _check(stack, tmp_path, *args, faults=(), env=None):
    with broken_gateway(stack, faults=tuple(faults)):
        return check(tmp_path, "--url", stack.gateway_url, "--skip", "KFP", *args, env=env)


def _own_stack(tmp_path_factory, **options):
    """A stack of its own, for a breakage that is a way of starting the platform."""
    from metro_e2e.stack import LocalStack, StackOptions

    from .conftest import _require_nginx

    _require_nginx()
    return LocalStack(StackOptions(run_dir=tmp_path_factory.mktemp("own-stack"), **options))


def test_mlflow3_without_allowed_hosts_fails_mlf_1(tmp_path_factory, tmp_path):
    with _own_stack(tmp_path_factory, mlflow_server="3.x-no-allowed-hosts") as stack:
        config, proxy_env = stack.hostname_client()  # the gateway under a DNS name, as on a cluster
        code, report, _ = check(tmp_path, "--url", config.url, "--skip", "KFP", "SRV", "PRM", env=proxy_env)
    assert code == 1
    expect_outcome(report, {"MLF-1": r"HTTP 403 \(an MLflow 3 server without --allowed-hosts answers 403\)"})


UI_BREAKAGES = {
    "assets-not-routed": (
        Fault(path=r"^/mlflow/static-files/", status=404, why="UI assets not routed"),
        r"every referenced script and stylesheet to load as one; got .*\.js -> HTTP 404",
    ),
    "every-path-answers-the-page": (  # an ingress rewriting unknown paths to index.html (an SPA fallback)
        Fault(path=r"^/mlflow/static-files/", status=200, body=UI_PAGE, content_type="text/html", why="SPA fallback"),
        r"\.js -> HTTP 200 text/html, not a script",
    ),
}


@pytest.mark.parametrize("breakage", list(UI_BREAKAGES))
def test_ui_that_cannot_run_in_a_browser_fails_mlf_2(metro_seeded_stack, tmp_path, breakage):
    fault, cause = UI_BREAKAGES[breakage]
    code, report, _ = _check(metro_seeded_stack, tmp_path, faults=[fault])
    assert code == 1
    expect_outcome(report, {"MLF-2": cause})


def test_version_skew_fails_mlf_3_naming_both_versions(metro_seeded_stack, tmp_path):
    fault = Fault(path=r"^/mlflow/version$", status=200, body="1.30.0", why="an MLflow 1.x server")
    code, report, _ = _check(metro_seeded_stack, tmp_path, faults=[fault])
    assert code == 1
    expect_outcome(report, {"MLF-3": r"client 2\.\d+\.\d+ with server 1\.30\.0"})


def test_artifacts_not_in_s3_fail_mlf_4(tmp_path_factory, tmp_path):
    with _own_stack(tmp_path_factory, mlflow_artifact_root="mlflow-artifacts:/") as stack:
        code, report, _ = check(tmp_path, "--url", stack.gateway_url, "--skip", "KFP", "SRV", "PRM")
    assert code == 1
    expect_outcome(report, {"MLF-4": r"an artifact location under s3://ml-models/; got mlflow-artifacts:/"})


MLF_5_BREAKAGES = {
    "model-uploads-refused": (
        Fault(
            path=r"^/ml-models/metro-e2e/",
            status=403,
            methods=("PUT", "POST"),
            body=S3_DENIED,
            content_type="application/xml",
            why="artifacts cannot be written",
        ),
        r"a run to log a model and register a version; got .*(AccessDenied|403)",
    ),
    "registry-lists-no-new-version": (  # e.g. two MLflow replicas, each with its own sqlite registry
        Fault(
            path=MLFLOW_API + r"model-versions/search$",
            status=200,
            body='{"model_versions": []}',
            why="searches answered by a registry that never sees the registration",
        ),
        r"exactly one new registered version; got 0 \(the registry lists 0 version\(s\) before registering and 0 after\)",
    ),
    "registry-points-elsewhere": (
        Fault(
            path=MLFLOW_API + r"model-versions/get-download-uri$",
            status=200,
            body='{"artifact_uri": "s3://another-bucket/models/iris/"}',
            why="a registry whose versions point at another store",
        ),
        r"the model's files in ml-models; got the registry says they are at s3://another-bucket/models/iris/",
    ),
}


@pytest.mark.parametrize("breakage", list(MLF_5_BREAKAGES))
def test_model_logging_and_registry_breakages_fail_mlf_5(metro_seeded_stack, tmp_path, breakage):
    fault, cause = MLF_5_BREAKAGES[breakage]
    code, report, _ = _check(metro_seeded_stack, tmp_path, faults=[fault])
    assert code == 1
    expect_outcome(report, {"MLF-5": cause})
    assert report["leftovers"] == [] or breakage == "model-uploads-refused", report["leftovers"]


def test_no_kfp_behind_the_gateway_fails_kfp_1_when_not_skipped(metro_seeded_stack, tmp_path):
    code, report, _ = check(tmp_path, "--url", metro_seeded_stack.gateway_url, "--quick")
    assert code == 1
    expect_outcome(report, {"KFP-1": r"healthz .* answered 503"})
