"""Soak: N consecutive `metro-e2e check` runs against one local stack; counts verdicts that change between runs.

Run by hand for the full count: `.venv/bin/python bench/soak.py --runs 20`; CI runs a short count
(tests/integration/test_repeatability.py). Exits 1 if any clause's verdict differs between runs (a flaky
verdict), any run leaves something behind, or any run's check does not pass.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metro_e2e.stack import LocalStack, StackOptions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    leftovers, durations, not_passing = 0, [], 0
    with tempfile.TemporaryDirectory() as tmp, LocalStack(StackOptions(run_dir=Path(tmp), seed_model=True)) as stack:
        for i in range(args.runs):
            report = Path(tmp) / f"report-{i}.json"
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "metro_e2e.cli",
                    "check",
                    "--url",
                    stack.gateway_url,
                    "--skip",
                    "KFP",
                    "--report-json",
                    str(report),
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            durations.append(time.perf_counter() - started)
            not_passing += done.returncode != 0
            data = json.loads(report.read_text())
            leftovers += len(data["leftovers"])
            for clause in data["clauses"]:
                seen[clause["id"]][clause["verdict"]] += 1
            print(f"run {i + 1}/{args.runs}: {durations[-1]:.1f} s", flush=True)
    flaky = {cid: dict(c) for cid, c in seen.items() if len(c) > 1}
    print(
        f"{args.runs} runs, {len(seen)} clauses, flaky verdicts: {len(flaky)} {flaky or ''}; leftovers: {leftovers}; "
        f"runs not passing: {not_passing}; median {sorted(durations)[len(durations) // 2]:.1f} s a run"
    )
    print("verdicts: " + ", ".join(f"{cid} {next(iter(c))}" for cid, c in seen.items() if len(c) == 1))
    return 1 if flaky or leftovers or not_passing else 0


if __name__ == "__main__":
    raise SystemExit(main())
