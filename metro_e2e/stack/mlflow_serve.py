"""``mlflow server`` with its gunicorn in the same process: the local stack's MLflow 2.x tracking server.

``mlflow server`` (MLflow 2.x) is a CLI process that validates its options, creates or migrates the backend store
(``initialize_backend_stores``) and then starts ``python -m gunicorn ... mlflow.server:app`` as a second process,
whose worker imports MLflow again: about 4.5 s apiece on 2 cores, paid at every stack start and MLflow restart.
This script runs MLflow's own CLI with the same arguments, lets it do all of that, takes the gunicorn command and
environment it was about to start (``mlflow.server._exec_cmd``) and runs that gunicorn command line in this
process. Gunicorn's worker is forked from it with MLflow already imported. The store's database connections are
closed before the fork, so the worker opens its own, as it does under ``mlflow server``.

It runs with the server environment's Python (``python -P mlflow_serve.py SERVER-ARGS``: ``-P`` keeps this folder
off ``sys.path``), where only MLflow and its dependencies are installed, so it imports nothing from ``metro_e2e``.
MLflow 3.x starts uvicorn and job runners asynchronously; its profiles run ``mlflow server`` itself
(``ServerProfile.in_process``).
"""

from __future__ import annotations

import os
import sys

# MLflow reads these when mlflow.server is imported, which here is before the command's environment is set:
# with either one, the captured command is executed as `mlflow server` would start it.
READ_AT_IMPORT = ("_MLFLOW_STATIC_PREFIX", "prometheus_multiproc_dir")


def _close_store_connections() -> None:
    """Dispose of the engines the CLI's store initialisation opened, so no SQLite connection crosses the fork."""
    from mlflow.server import handlers

    for store in (handlers._tracking_store, handlers._model_registry_store):
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()


def main(argv: list[str]) -> int:
    import mlflow.server
    from mlflow.cli import cli

    captured: dict = {}

    def capture(cmd, extra_env=None, **kwargs):
        captured.update(cmd=list(cmd), env=dict(extra_env or {}), kwargs=kwargs)

    mlflow.server._exec_cmd = capture
    try:  # click's own handling of usage errors, --help and exit codes, as `mlflow server` has
        cli.main(args=["server", *argv], prog_name="mlflow")
    except SystemExit as exc:
        if exc.code not in (0, None) or "cmd" not in captured:
            raise
    command = captured["cmd"]
    if command[1:3] != ["-m", "gunicorn"] or captured["kwargs"].get("synchronous") is False:
        print(f"mlflow_serve: MLflow's server command is not a synchronous gunicorn: {captured}", file=sys.stderr)
        return 2
    if any(name in captured["env"] for name in READ_AT_IMPORT):
        os.execve(command[0], command, {**os.environ, **captured["env"]})
    os.environ.update(captured["env"])
    _close_store_connections()
    print(f"=== Running command (in this process) '{' '.join(command)}'", flush=True)
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = ["gunicorn", *command[3:]]
    try:
        WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()
    except SystemExit as exc:
        if exc.code not in (0, None):  # what the CLI says and does when its gunicorn process fails
            print("Running the mlflow server failed. Please see the logs above for details.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
