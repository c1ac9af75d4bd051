"""How long `metro-e2e check` takes: the figures of docs/testing.md "How long things take".

Not a test (timings are noisy): run it by hand, e.g. `.venv/bin/python bench/check_time.py --runs 5`. It starts one
local stack, seeds it as after the guide, and then times, over N runs each:

- `check --url <warm stack> --skip KFP` (default mode) and `--quick --skip KFP`: wall time of the command, from
  process start to exit (KFP does not run locally, so its clauses are left out as `check` without a URL does);
- MLF-5 (log and register a model) as the report times it, against a reference measured in the same run: the same
  MLflow calls made bare (a run with a param, a metric, `mlflow.sklearn.log_model` with explicit requirements and
  signature, `register_model`) against the same server through the same gateway, in this warm process. The ratio
  MLF-5 / reference is not all overhead of the suite: MLF-5 also counts the versions before and after, locates the
  files in S3 and fits the model, and it runs in a fresh `check` process, where MLflow scans the installed
  distributions once when it is given requirements (about 0.7 s);
- `check` with no URL: from nothing to the printed table (start a stack, seed it, check it, stop it), with the
  server environments already built;
- the default mode again with `--bundle` and `--html` (in the same loop, so the two share the noise), the bundle's
  size, and `metro-e2e report BUNDLE --html` and `metro-e2e diff OLD NEW` on those bundles.

Prints median, min and max of each. Needs nginx (`apt-get install -y nginx-light`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metro_e2e.stack import LocalStack, StackOptions


def _check(args: list[str], workdir: Path) -> tuple[float, dict]:
    report = workdir / "report.json"
    report.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "metro_e2e.cli", "check", "--report-json", str(report), *args]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=workdir)
    took = time.perf_counter() - started
    if not report.exists():
        raise SystemExit(f"check {' '.join(args)} wrote no report (exit {done.returncode}):\n{done.stderr[-2000:]}")
    document = json.loads(report.read_text())
    bad = [f"{c['id']} {c['verdict']}" for c in document["clauses"] if c["verdict"] in ("failed", "error", "blocked")]
    if done.returncode != 0 or bad:
        raise SystemExit(f"check {' '.join(args)} did not pass (exit {done.returncode}): {bad}")
    return took, document


def _command(args: list[str], workdir: Path) -> float:
    """Wall time of ``metro-e2e ARGS`` (exit 0 or 1: diff's regression is an answer, not a failure)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "metro_e2e.cli", *args], capture_output=True, timeout=300, cwd=workdir)
    if done.returncode not in (0, 1):
        raise SystemExit(f"metro-e2e {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return time.perf_counter() - started


def _clause_s(document: dict, clause_id: str) -> float:
    return float(next(c["duration_s"] for c in document["clauses"] if c["id"] == clause_id))


def _bare_log_and_register(config, tag: str) -> float:
    """The MLflow work of MLF-5 with nothing of the suite around it (imports already done)."""
    import mlflow

    from metro_e2e import data, training
    from metro_e2e.registry import mlflow_session

    parts = data.split(data.iris_frame())
    model, accuracy = training.fit(parts)
    started = time.perf_counter()
    with mlflow_session(config) as client:
        experiment = client.create_experiment(f"bench-{tag}")
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_param("model_type", training.MODEL_TYPE)
            mlflow.log_metric("accuracy", accuracy)
            info = training.log_model(model, parts.train_X.head(3), config.artifact_name)
        mlflow.register_model(info.model_uri, f"bench-{tag}", await_registration_for=60)
    return time.perf_counter() - started


def _show(name: str, values: list[float], unit: str = "s") -> None:
    print(
        f"{name:44} median {statistics.median(values):7.2f} {unit}  min {min(values):7.2f}  max {max(values):7.2f}"
        f"  (n={len(values)})",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-no-url", action="store_true", help="leave out `check` with no URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        with LocalStack(StackOptions(run_dir=workdir / "stack", seed_model=True)) as stack:
            print(f"warm stack started and seeded in {time.perf_counter() - started:.1f} s", flush=True)
            url = stack.gateway_url
            _check(["--url", url, "--skip", "KFP"], workdir)  # one run to warm every server's first request
            default, quick, mlf5, bare, kept, sizes, report, diff = [], [], [], [], [], [], [], []
            for run in range(args.runs):
                took, document = _check(["--url", url, "--skip", "KFP"], workdir)
                default.append(took)
                mlf5.append(_clause_s(document, "MLF-5"))
                bare.append(_bare_log_and_register(stack.config(), f"{run}-{time.time_ns()}"))
                quick.append(_check(["--url", url, "--quick", "--skip", "KFP"], workdir)[0])
                bundle = workdir / f"run{run}.tar.gz"
                results = ["--bundle", str(bundle), "--html", str(workdir / "run.html")]
                kept.append(_check(["--url", url, "--skip", "KFP", *results], workdir)[0])
                sizes.append(bundle.stat().st_size / 1024)
                report.append(_command(["report", str(bundle), "--html", str(workdir / "again.html")], workdir))
                if run:
                    diff.append(_command(["diff", str(workdir / f"run{run - 1}.tar.gz"), str(bundle)], workdir))
            _show("check --url <warm stack> (default mode)", default)
            _show("check --url <warm stack> --quick", quick)
            _show("MLF-5 in the default runs", mlf5)
            _show("reference: bare log_model + register_model", bare)
            _show("ratio MLF-5 / reference (per run)", [a / b for a, b in zip(mlf5, bare, strict=True)], "x")
            _show("check --url <warm stack> --bundle --html", kept)
            _show("ratio with / without --bundle --html", [a / b for a, b in zip(kept, default, strict=True)], "x")
            _show("bundle size (default mode)", sizes, "KiB")
            _show("report BUNDLE --html", report)
            if diff:
                _show("diff BUNDLE BUNDLE", diff)
        if not args.skip_no_url:
            no_url = [_check([], workdir)[0] for _ in range(args.runs)]
            _show("check with no URL (start, seed, check, stop)", no_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
