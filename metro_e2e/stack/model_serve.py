"""``mlflow models serve --env-manager local`` in one process: the local stack's model server.

``mlflow models serve`` is a CLI process that asks MLflow for the scoring server's command
(``mlflow.pyfunc.scoring_server.get_cmd``: ``uvicorn ... mlflow.pyfunc.scoring_server.app:app`` and the
environment naming the model) and starts it as a second process. Each imports MLflow, about 4.5 s apiece on
2 cores, and the local stack restarts serving often (seeding, SRV-5, after a promote run, after every breakage test
that changes ``latest/``). This module asks MLflow for the same command and environment and runs that uvicorn
command line in this process: the same server, app, model loading and request timeout, one MLflow import.
The serving image (``serving_pod.py``) still runs ``mlflow models serve`` itself, as the platform's pod does.

Usage: ``python -m metro_e2e.stack.model_serve MODEL_DIR --host HOST --port PORT``
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

WORKERS = 1  # what `mlflow models serve` runs without --workers


def command(model_dir: str, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The scoring server's command line and environment, as ``mlflow models serve`` would start it."""
    from mlflow.pyfunc import scoring_server

    line, env = scoring_server.get_cmd(model_dir, port=port, host=host, nworkers=WORKERS)
    return shlex.split(line), env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metro_e2e.stack.model_serve", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    line, env = command(args.model_dir, args.host, args.port)
    if line[0] != "uvicorn":
        print(f"model_serve: MLflow's scoring server command is not uvicorn: {' '.join(line)}", file=sys.stderr)
        return 2
    os.environ.update(env)
    print(f"=== Running command (in this process) '{' '.join(line)}'", flush=True)
    import uvicorn

    return uvicorn.main.main(args=line[1:], prog_name="uvicorn", standalone_mode=True)


if __name__ == "__main__":
    raise SystemExit(main())
