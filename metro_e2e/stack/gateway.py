"""The gateway: nginx with a config rendered from the one template both the local stack and compose use."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2

from metro_e2e.config import SERVING_HOST
from metro_e2e.stack.process import Service, StackError

TEMPLATE = Path(__file__).with_name("gateway.conf.j2")
NGINX_INSTALL_HINT = "install it with: apt-get install -y nginx-light"


@dataclass(frozen=True, kw_only=True)
class Fault:
    """A deliberate breakage: requests to ``path`` (a regex; with ``methods``, only those) get ``status``/``body``,
    or, with ``proxy_to``, go to that ``host:port`` instead (a silent listener: a hang; a closed port: refused)."""

    path: str
    status: int = 500
    body: str = ""
    methods: tuple[str, ...] = ()
    upstream: str = "s3"  # where other methods go: s3 | mlflow
    content_type: str = "application/json"
    proxy_to: str | None = None
    why: str = ""


@dataclass(frozen=True, kw_only=True)
class GatewayRoutes:
    """Where the gateway sends each route, and how strict it is."""

    listen: str
    s3: str
    mlflow: str
    model: str
    kfp: str | None = None
    s3_backend: str = "moto"
    s3_verifier: str | None = None  # host:port of the SigV4 verifier: S3 requests must be signed with the secret
    public_buckets: tuple[str, ...] = ()  # anonymous GET/HEAD allowed there (a deliberately broken platform)
    serving_host: str = SERVING_HOST
    serving_redirect: bool = True
    serving_route: bool = True  # False: no Host-based model route (a deliberately broken gateway)
    serving_host_required: bool = True  # False: /mlflow-model/ reaches the model whatever the Host (broken)
    faults: tuple[Fault, ...] = ()
    resolver: str | None = None  # a DNS server: resolve upstream names at run time (docker-compose)


GENERATION_PATH = "/_metro_generation"  # answers which configuration the gateway serves (no bucket has this name)


def render(routes: GatewayRoutes, *, run_dir: str, log_dir: str, user: str | None = None, generation: int = 0) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    template = env.from_string(TEMPLATE.read_text())
    values = {k: getattr(routes, k) for k in routes.__dataclass_fields__}
    values["upstreams"] = [("s3", routes.s3), ("mlflow", routes.mlflow), ("model", routes.model)]
    if routes.kfp:
        values["upstreams"].append(("kfp", routes.kfp))
    if routes.s3_verifier:
        values["upstreams"].append(("sigv4", routes.s3_verifier))
    return template.render(
        **values, run_dir=run_dir, log_dir=log_dir, user=user, generation=generation, generation_path=GENERATION_PATH
    )


def wait_for_generation(url: str, generation: int, *, timeout_s: float = 20.0, in_a_row: int = 3) -> None:
    """Wait until the gateway at ``url`` answers with configuration ``generation`` ``in_a_row`` times in a row: after
    a reload nginx's old workers may still take a connection for a moment. ``StackError`` with what it last saw."""
    import requests

    from metro_e2e._poll import NotYet, PollTimeout, poll

    streak = 0

    def attempt():
        nonlocal streak
        try:
            answer = requests.get(url + GENERATION_PATH, timeout=3)
            seen = answer.text.strip() if answer.status_code == 200 else f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            seen = type(exc).__name__
        streak = streak + 1 if seen == str(generation) else 0
        return True if streak >= in_a_row else NotYet(seen)

    try:
        poll(attempt, timeout_s=timeout_s, interval_s=0.05, what="the gateway's reload")
    except PollTimeout as exc:
        raise StackError(
            f"the gateway did not serve configuration {generation} within {timeout_s:.0f} s after its reload "
            f"(last answer: {exc.seen})"
        ) from None


def nginx_binary() -> str:
    path = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if not path:
        raise StackError(f"the local stack's gateway needs nginx, which is not installed ({NGINX_INSTALL_HINT})")
    return path


def validate(conf: Path) -> None:
    """``nginx -t`` on ``conf``; ``StackError`` with nginx's own complaint when it would not load."""
    import subprocess

    done = subprocess.run(
        [nginx_binary(), "-t", "-q", "-p", str(conf.parent), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise StackError(f"the gateway config {conf} is invalid: {(done.stderr or done.stdout).strip()[-500:]}")


def gateway_service(routes: GatewayRoutes, *, run_dir: Path, log_dir: Path) -> Service:
    """An nginx process serving ``routes``; its config is written under ``run_dir``."""
    gw_dir = run_dir / "gateway"
    gw_dir.mkdir(parents=True, exist_ok=True)
    conf = gw_dir / "nginx.conf"
    user = "root" if os.geteuid() == 0 else None  # as root, nginx workers must be able to read the run folder
    conf.write_text(render(routes, run_dir=str(gw_dir), log_dir=str(log_dir), user=user))
    return Service(
        name="gateway",
        command=[nginx_binary(), "-e", str(log_dir / "gateway-error.log"), "-p", str(gw_dir), "-c", str(conf)],
        log_path=log_dir / "gateway.log",
        url=f"http://{routes.listen}",
    )


# docker-compose.yml: service names and the ports each service listens on inside the compose network.
COMPOSE_ROUTES = GatewayRoutes(
    listen="80",
    s3="minio:9000",
    mlflow="mlflow:5000",
    model="mlflow-model:5001",
    s3_backend="minio",
    resolver="127.0.0.11",  # Docker's embedded DNS
)
COMPOSE_GATEWAY_CONF = Path("docker") / "gateway.conf"


def compose_config() -> str:
    """The gateway config docker-compose.yml mounts (``docker/gateway.conf``), from the same template."""
    return render(COMPOSE_ROUTES, run_dir="/tmp", log_dir="/var/log/nginx")
