"""docker-compose.yml and the process stack share one gateway template, ports and credentials."""

from __future__ import annotations

from pathlib import Path

import yaml

from metro_e2e.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from metro_e2e.stack import gateway, s3

pytest_plugins = ["pytest_httpserver"]

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_compose_gateway_config_is_the_template_rendered():
    committed = (ROOT / gateway.COMPOSE_GATEWAY_CONF).read_text()
    assert committed == gateway.compose_config(), "refresh with: metro-e2e stack compose-gateway"
    assert gateway.TEMPLATE.name in committed  # says where it comes from


def test_compose_services_listen_where_the_gateway_sends_them():
    services = _compose()
    gw = services["gateway"]
    assert "./docker/gateway.conf:/etc/metro/gateway.conf:ro" in gw["volumes"]
    assert gw["ports"] == ["127.0.0.1:8080:80"], "published on loopback only"
    routes = gateway.COMPOSE_ROUTES
    assert routes.listen == "80"
    assert routes.s3 == "minio:9000" and ":9000" in services["minio"]["command"]
    assert routes.mlflow == "mlflow:5000" and "--port 5000" in services["mlflow"]["command"][-1]
    assert routes.model == "mlflow-model:5001" and services["mlflow-model"]["environment"]["PORT"] == "5001"


def test_compose_uses_the_platforms_images_and_credentials():
    services = _compose()
    assert services["minio"]["image"] == s3.MINIO_IMAGE
    assert services["mlflow"]["image"] == "ghcr.io/mlflow/mlflow:v2.20.3"
    mlflow_cmd = services["mlflow"]["command"][-1]
    assert "--default-artifact-root s3://ml-models/" in mlflow_cmd and "--serve-artifacts" in mlflow_cmd
    env = services["minio"]["environment"]
    assert (env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"]) == (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    assert (
        "ml-models" in services["minio-init"]["entrypoint"][-1]
        and "ml-data" in services["minio-init"]["entrypoint"][-1]
    )


def test_process_stack_renders_the_same_template_with_the_same_routes():
    local = gateway.render(
        gateway.GatewayRoutes(listen="127.0.0.1:1", s3="127.0.0.1:2", mlflow="127.0.0.1:3", model="127.0.0.1:4"),
        run_dir="/r",
        log_dir="/l",
    )
    compose = gateway.compose_config()
    for route in (
        "location ~ ^/mlflow(/|$)",
        "rewrite ^/mlflow(.*)$ /$1 break;",
        "location /mlflow-model/",
        "proxy_pass http://metro_model/;",
        "location = /mlflow-model",
        "server_name mlflow-model.local;",
        "proxy_set_header Host $http_host;",
        "location /pipeline",
    ):
        assert route in local and route in compose, route


def test_a_reload_is_waited_for_until_only_the_new_configuration_answers(httpserver):
    """After nginx's SIGHUP an old worker may still answer for a moment: the wait needs the new generation three
    times in a row, and says what it last saw when it never comes."""
    import pytest
    from werkzeug import Response

    from metro_e2e.errors import StackError

    answers = ["1", "0", "1", "1", "1"]  # an old worker's "0" breaks the first streak
    seen: list[str] = []

    def answer(request):
        seen.append(answers.pop(0) if answers else "1")
        return Response(seen[-1])

    httpserver.expect_request(gateway.GENERATION_PATH).respond_with_handler(answer)
    url = httpserver.url_for("").rstrip("/")
    gateway.wait_for_generation(url, 1, timeout_s=5)
    assert seen == ["1", "0", "1", "1", "1"]
    with pytest.raises(
        StackError, match=r"did not serve configuration 2 within 0 s after its reload \(last answer: 1\)"
    ):
        gateway.wait_for_generation(url, 2, timeout_s=0.3)
