"""How long the test suite takes: the figures of docs/testing.md "How long things take".

Not a test: run it by hand from the repository root, e.g. `.venv/bin/python bench/suite_time.py unit --runs 3`.

- `unit`: `pytest -n 2 tests/unit`, wall time;
- `default`: `pytest -n 2`, the whole default run (unit, integration, live; not the tests marked slow), wall time;
  needs nginx;
- `slow`: `pytest -n 2 -m slow`, the tests the default run leaves out and CI runs after it;
- `slowest`: one default run with `--durations=40`, printing what each of the slowest tests paid for.

Each figure is the median, min and max over N runs, caches warm (run it once first to build the MLflow server
environments). A run that does not pass is reported and not counted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "unit": ["-m", "pytest", "-q", "-n", "2", "tests/unit"],
    "default": ["-m", "pytest", "-q", "-n", "2"],
    "slow": ["-m", "pytest", "-q", "-n", "2", "-m", "slow"],
    "slowest": ["-m", "pytest", "-q", "-n", "2", "--durations=40"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=sorted(COMMANDS))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = 1 if args.what == "slowest" else args.runs
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, *COMMANDS[args.what]], cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - started
        tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
        if args.what == "slowest" and "slowest" in done.stdout:
            print(done.stdout[done.stdout.index("slowest") :])
        print(f"  {took:7.1f} s  exit {done.returncode}  {tail}", flush=True)
        if done.returncode == 0:
            times.append(took)
    if not times:
        print("no run passed", file=sys.stderr)
        return 1
    print(
        f"pytest {args.what}: median {statistics.median(times):.1f} s, min {min(times):.1f}, max {max(times):.1f} "
        f"(n={len(times)} passing of {runs})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
