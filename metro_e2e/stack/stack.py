"""The local Metro platform: S3, MLflow, the model server and the gateway as real processes on loopback.

``LocalStack(...).start()`` starts the services in parallel on free
127.0.0.1 ports, each with a bounded readiness wait; ``stop()`` stops every
process group (also after a failed start). ``config()`` is the
``MetroConfig`` of the gateway, which is the only URL clients should use.
KFP does not run locally: ``status()`` says so and KFP checks skip.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from metro_e2e.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, MetroConfig, load_config
from metro_e2e.stack import gateway, mlflow_server, s3
from metro_e2e.stack.model_server import ModelServer
from metro_e2e.stack.process import (
    Service,
    StackError,
    free_port,
    http_probe,
    release_ports,
    stop_group,
    wait_ready,
)
from metro_e2e.storage import Storage

log = logging.getLogger(__name__)

KFP_STATUS = "not part of the local stack: KFP clauses are skipped"
SEED_SPLIT = 7
# A name for the gateway, as real clusters have (clients reach it through the gateway as an HTTP proxy).
GATEWAY_HOSTNAME = "metro-gateway.test"
STATE_FILE = "stack.json"


@dataclass(frozen=True, kw_only=True)
class StackOptions:
    mlflow_server: str = mlflow_server.DEFAULT_PROFILE
    s3: str = "auto"  # auto | moto
    run_dir: Path | None = None
    public_buckets: tuple[str, ...] = ()  # buckets that allow anonymous reads (a deliberately broken platform)
    serving_redirect: bool = True
    serving_route: bool = True
    serving_host_required: bool = True  # False: a gateway that sends /mlflow-model/ to the model for any Host
    kfp: str | None = None  # host:port of a KFP API (e.g. a fake) for the gateway's /pipeline route
    faults: tuple = ()  # gateway.Fault: deliberate breakages, for tests
    mlflow_artifact_root: str = "s3://ml-models/"
    seed_model: bool = False  # train, register and promote iris-model, then restart serving


class LocalStack:
    """A running (or stopped) local Metro platform."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        if self.options.mlflow_server not in mlflow_server.PROFILES:
            raise StackError(
                f"unknown MLflow server profile {self.options.mlflow_server!r}",
                hint="choose one of " + ", ".join(mlflow_server.PROFILES),
            )
        self.profile = mlflow_server.PROFILES[self.options.mlflow_server]
        self.run_dir = Path(self.options.run_dir or tempfile.mkdtemp(prefix="metro-stack-"))
        self.log_dir = self.run_dir / "logs"
        self._gateway_generation = 0  # the gateway configuration nginx serves (reconfigure_gateway counts up)
        self.ports: dict[str, int] = {}
        for name in ("gateway", "s3", "mlflow", "serving", "sigv4"):
            self.ports[name] = free_port(taken=set(self.ports.values()))
        self.gateway_url = f"http://127.0.0.1:{self.ports['gateway']}"
        self.s3_choice = s3.choose_backend(self.options.s3)
        self.services: dict[str, object] = {}
        self.serving: ModelServer | None = None
        self.started_s: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        began = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                futures = [pool.submit(self._start_s3), pool.submit(self._start_mlflow)]
                if self._verifies_signatures():
                    futures.append(pool.submit(self._start_sigv4))
                if self.options.seed_model:  # MLflow and scikit-learn load while the MLflow server starts
                    futures.append(pool.submit(importlib.import_module, "metro_e2e.training"))
                s3_url = futures[0].result()
                futures.append(pool.submit(self._start_gateway, s3_url))
                for f in futures:
                    f.result()
            self.serving = ModelServer(
                port=self.ports["serving"], run_dir=self.run_dir, log_dir=self.log_dir, s3_config=self.s3_config()
            )
            self.serving.start()
            if self.options.seed_model:
                self.seed_model()
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - began
        self.write_state()
        return self

    def stop(self) -> None:
        """Stop every service, all at once (each: SIGTERM, SIGKILL after its grace); safe to call twice or after
        a failed start. The first error is raised once every service has been stopped."""
        stops = [self.serving.stop] if self.serving else []
        stops += [service.stop for service in self.services.values() if service is not None]
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(stops))) as pool:
                futures = [pool.submit(stop) for stop in stops]
            failed = [exc for exc in (f.exception() for f in futures) if exc is not None]
            for exc in failed:
                log.warning("stopping a service of the stack failed: %s", exc)
            if failed:
                raise failed[0]
        finally:
            release_ports(self.ports.values())

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- services ----------------------------------------------------------------------------------------------
    def _start_s3(self) -> str:
        backend = self.s3_choice.backend
        if backend == "minio (docker)":
            service = s3.MinioContainer(log_dir=self.log_dir).start()
        elif backend == "minio (binary)":
            service = s3.minio_binary_service(
                port=self.ports["s3"], data_dir=self.run_dir / "minio", log_dir=self.log_dir
            ).start()
            s3.wait_s3(service)
        else:
            gw_port = self.ports["gateway"]
            endpoints = [self.gateway_url, f"http://localhost:{gw_port}", f"http://{GATEWAY_HOSTNAME}:{gw_port}"]
            service = s3.moto_service(port=self.ports["s3"], log_dir=self.log_dir, custom_endpoints=endpoints).start()
            s3.wait_s3(service)
        self.services["s3"] = service
        storage = Storage(self.s3_config(direct_url=service.url))
        for bucket in s3.BUCKETS:  # as the platform's install does
            if not storage.bucket_exists(bucket):
                storage.create_bucket(bucket)
        return service.url

    def _verifies_signatures(self) -> bool:
        """moto accepts any signature; MinIO checks them itself (and the compose stack runs MinIO)."""
        return self.s3_choice.backend == "moto"

    def _start_sigv4(self) -> None:
        port = self.ports["sigv4"]
        service = Service(
            name="sigv4",
            command=[sys.executable, "-m", "metro_e2e.stack.sigv4", "--port", str(port)],
            log_path=self.log_dir / "sigv4.log",
            env={"METRO_SIGV4_ACCESS_KEY": DEFAULT_ACCESS_KEY, "METRO_SIGV4_SECRET_KEY": DEFAULT_SECRET_KEY},
            url=f"http://127.0.0.1:{port}",
        ).start()
        self.services["sigv4"] = service
        wait_ready(
            service, http_probe(service.url + "/", expect_status=403), expected="HTTP 403 (unsigned)", deadline_s=15.0
        )

    def _start_mlflow(self) -> None:
        service = mlflow_server.mlflow_service(
            self.profile,
            port=self.ports["mlflow"],
            data_dir=self.run_dir / "mlflow",
            log_dir=self.log_dir,
            s3_endpoint=self.gateway_url,
            artifact_root=self.options.mlflow_artifact_root,
            access_key=DEFAULT_ACCESS_KEY,
            secret_key=DEFAULT_SECRET_KEY,
        )
        self.services["mlflow"] = service.start()
        mlflow_server.wait_mlflow(service)

    def _start_gateway(self, s3_url: str) -> None:
        routes = self._routes(s3_url)
        service = gateway.gateway_service(routes, run_dir=self.run_dir, log_dir=self.log_dir)
        self.services["gateway"] = service.start()
        self._wait_gateway(service)

    def _wait_gateway(self, service) -> None:
        # any HTTP answer proves nginx is up (locally /pipeline is answered by nginx itself)
        wait_ready(
            service,
            http_probe(self.gateway_url + "/pipeline", expect_status=None),
            expected="nginx answering",
            deadline_s=15.0,
        )

    def restart_service(self, name: str) -> None:
        """Stop one service (if it still runs) and start it again, ready: ``serving``, ``mlflow`` or ``gateway``.

        (S3 is not restartable in place: moto keeps its data in memory.)
        """
        if name == "serving":
            self.serving.restart()
            return
        if name not in ("mlflow", "gateway"):
            raise StackError(f"cannot restart {name!r} in place", hint="restart the whole stack")
        service = self.services[name]
        service.stop(grace=0.5)
        service.start()
        if name == "mlflow":
            mlflow_server.wait_mlflow(service)
        else:
            self._wait_gateway(service)

    def reconfigure_gateway(self, **changes) -> None:
        """Change gateway routes (e.g. ``serving_redirect=False``) and reload nginx, as a broken platform would."""
        import dataclasses
        import signal

        service = self.services["gateway"]
        conf = self.run_dir / "gateway" / "nginx.conf"
        user = "root" if os.geteuid() == 0 else None
        options = dataclasses.replace(self.options, **changes)
        candidate = conf.with_name("candidate.conf")
        candidate.write_text(
            gateway.render(
                self._routes(self.services["s3"].url, options),
                run_dir=str(conf.parent),
                log_dir=str(self.log_dir),
                user=user,
                generation=self._gateway_generation + 1,
            )
        )
        gateway.validate(candidate)  # nginx keeps its old config on a bad one: refuse instead of checking the old
        candidate.replace(conf)
        self.options = options
        self._gateway_generation += 1
        os.kill(service.pid, signal.SIGHUP)
        # nginx starts new workers with the new config, then retires the old ones: wait until only new ones answer
        gateway.wait_for_generation(self.gateway_url, self._gateway_generation)

    def _routes(self, s3_url: str, options: StackOptions | None = None) -> gateway.GatewayRoutes:
        options = options or self.options
        verify = self._verifies_signatures()
        return gateway.GatewayRoutes(
            listen=f"127.0.0.1:{self.ports['gateway']}",
            s3=s3_url.removeprefix("http://"),
            mlflow=f"127.0.0.1:{self.ports['mlflow']}",
            model=f"127.0.0.1:{self.ports['serving']}",
            s3_backend=self.s3_choice.backend,
            s3_verifier=f"127.0.0.1:{self.ports['sigv4']}" if verify else None,
            public_buckets=tuple(options.public_buckets),
            serving_redirect=options.serving_redirect,
            serving_route=options.serving_route,
            serving_host_required=options.serving_host_required,
            kfp=options.kfp,
            faults=tuple(options.faults),
        )

    # -- views ---------------------------------------------------------------------------------------------------
    def s3_config(self, direct_url: str | None = None) -> MetroConfig:
        return load_config(cli={"url": direct_url or self.gateway_url}, environ={})

    def config(self, **settings) -> MetroConfig:
        """Settings for a client of this stack: every endpoint through the gateway."""
        # "in-cluster" for the local stack is the gateway itself (pipeline steps run on this machine)
        return load_config(cli={"url": self.gateway_url, "in_cluster_url": self.gateway_url, **settings}, environ={})

    def hostname_client(self, **settings) -> tuple[MetroConfig, dict[str, str]]:
        """Settings that name the gateway ``metro-gateway.test`` and the proxy environment that makes that resolve.

        Clients send ``Host: metro-gateway.test:<port>`` as they would to a real cluster's name; requests
        reach nginx because it is also the HTTP proxy (``HTTP_PROXY``).
        """
        url = f"http://{GATEWAY_HOSTNAME}:{self.ports['gateway']}"
        env = {"HTTP_PROXY": self.gateway_url, "http_proxy": self.gateway_url, "NO_PROXY": "", "no_proxy": ""}
        return load_config(cli={"url": url, **settings}, environ={}), env

    def seed_model(self, split_seed: int = SEED_SPLIT) -> str:
        """Give the platform what a user has after the guide: iris-model trained, promoted and served.

        The default split differs from the checks' own (``data.DEFAULT_SEED``), so the check's model predicts
        otherwise on a few rows; ``split_seed=data.DEFAULT_SEED`` seeds a model that predicts like it.
        """
        from metro_e2e import data, promotion, training

        config = self.config()
        storage = Storage(config)
        data.upload_dataset(storage, data.iris_frame(), bucket=config.data_bucket, key=config.data_key)
        # a split seed other than the default the checks train with, so a freshly promoted check model
        # predicts differently on a few rows and SRV-5 can tell whether serving really restarted
        result = training.train(config, data.split(data.iris_frame(), seed=split_seed))
        promotion.promote(config, version=result.version, storage=storage)
        return self.restart_serving()

    def restart_serving(self) -> str:
        if self.serving is None:
            raise StackError("the stack is not running")
        return self.serving.restart()

    def status(self) -> dict:
        services = {}
        for name, service in self.services.items():
            services[name] = {
                "url": service.url,
                "version": getattr(service, "version", None),
                "log": str(service.log_path),
                "pid": service.pid,
            }
        if self.serving:
            services["serving"] = {
                "url": self.serving.url,
                "version": None,
                "log": str(self.serving.log_path),
                "pid": self.serving.pid,
                "state": self.serving.state,
            }
        if "mlflow" in services:
            services["mlflow"]["profile"] = self.profile.name
        return {
            "gateway_url": self.gateway_url,
            "run_dir": str(self.run_dir),
            "s3_backend": self.s3_choice.backend,
            "s3_backend_reason": self.s3_choice.reason,
            "mlflow_server": self.profile.version,
            "kfp": f"routed to {self.options.kfp} (not a KFP backend of this stack)"
            if self.options.kfp
            else KFP_STATUS,
            "started_in_s": None if self.started_s is None else round(self.started_s, 1),
            "services": services,
        }

    def write_state(self) -> Path:
        path = self.run_dir / STATE_FILE
        path.write_text(json.dumps(self.status(), indent=2))
        return path


def restart_serving_from_state(state_file: Path) -> str:
    """Restart the model server of a detached ``stack up`` (its ``kubectl rollout restart``); record the new pid."""
    state = json.loads(Path(state_file).read_text())
    serving = state["services"]["serving"]
    if serving.get("pid"):
        stop_group(serving["pid"])
    run_dir = Path(state["run_dir"])
    server = ModelServer(
        port=int(serving["url"].rsplit(":", 1)[1]),
        run_dir=run_dir,
        log_dir=run_dir / "logs",
        s3_config=load_config(cli={"url": state["gateway_url"]}, environ={}),
    )
    server.start()
    serving.update(pid=server.pid, state=server.state)
    Path(state_file).write_text(json.dumps(state, indent=2))
    return server.state


def stop_from_state(state_file: Path, grace: float = 10.0) -> list[str]:
    """Stop the processes a detached ``stack up`` recorded; return the names stopped."""
    state = json.loads(Path(state_file).read_text())
    stopped = []
    for name in ("serving", "gateway", "sigv4", "mlflow", "s3"):
        pid = state["services"].get(name, {}).get("pid")
        if pid:
            stop_group(pid, grace)
            stopped.append(name)
    return stopped
