"""Behaviour comparison of `metro-e2e check` across a refactor: same scenarios, same reports?

Record a fixed set of `check` scenarios with one source tree's code, normalise what legitimately varies between
two runs of the same code (run ids, ports, timestamps, durations, latencies, MLflow run ids, ...), then compare
two recordings clause by clause:

    .venv/bin/python bench/compare_check.py record bench/check-baseline --source /tmp/base
    .venv/bin/python bench/compare_check.py record /tmp/check-new            # this repository's code
    .venv/bin/python bench/compare_check.py compare bench/check-baseline /tmp/check-new

`record` writes OUTDIR/<scenario>.json = {"exit_code", "report", "junit"}; `compare` prints every difference
(per clause: which field, old vs new) and exits 0 only if every scenario is equal. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 600

# name -> `metro-e2e check` arguments (the report paths are added); no URL = the seeded local stack (needs nginx)
SCENARIOS: dict[str, list[str]] = {
    "default": [],
    "promote": ["--allow-promote"],
    "quick": ["--quick"],
    "strict-skip": ["--strict", "--skip", "SRV-6", "MLF"],
    "unreachable": ["--url", "http://127.0.0.1:9"],
    "bad-input": ["--url", "http://127.0.0.1:9", "--skip", "NOPE"],
}

# --- normalisation: only what differs between two runs of the same code -------------------------------------
# (pattern, replacement), applied in order to every string of the report and every JUnit property value
TEXT_RULES: list[tuple[re.Pattern[str], str]] = [
    # the check's run id (context.new_run_id: UTC %Y%m%d-%H%M%S + 6 hex), also inside names and namespaces
    (re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b"), "<run-id>"),
    # ISO 8601 timestamps
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<timestamp>"),
    # ephemeral ports of the local stack (4-5 digits; a fixed low port such as :9 is part of the scenario)
    (re.compile(r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0):\d{4,5}\b"), r"\1:<port>"),
    # MLflow run ids, ETags, digests: runs of 16+ hex digits
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<hex>"),
    # temp folders (the local stack's run dir, pytest's, the check's own)
    (re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/[^\s'\",;)\]]+"), "<tmp>"),
    # measured timings: "in 2 ms", "p95 12 ms", "median 9 ms", "(median 9 ms)"
    (re.compile(r"\b(in|p95|median|took|after) \d+(?:\.\d+)? ?(ms|s)\b"), r"\1 <N> \2"),
    # a trained model's accuracy
    (re.compile(r"\baccuracy \d+(?:\.\d+)?"), "accuracy <acc>"),
]
# report / JUnit fields whose value is measured, not decided: a number becomes a placeholder (a change of type stays
# visible); budget_s is computed from the run's timeouts, so it is compared as is
MEASURED = {"duration_s"}
REPORT_PLACEHOLDERS = {"started_at": "<timestamp>", "run_id": "<run-id>"}


def norm_text(text: str, source: Path | None = None) -> str:
    if source is not None:
        text = text.replace(str(source), "<source>")
    for pattern, replacement in TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def _norm_value(value, source: Path | None):
    if isinstance(value, str):
        return norm_text(value, source)
    if isinstance(value, list):
        return [_norm_value(v, source) for v in value]
    if isinstance(value, dict):
        return {k: _norm_value(v, source) for k, v in value.items()}
    return value


def _measured(value):
    return "<duration>" if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else value


def normalise_report(report: dict, source: Path | None = None) -> dict:
    out = {}
    for key, value in report.items():
        if key in REPORT_PLACEHOLDERS and isinstance(value, str):
            out[key] = REPORT_PLACEHOLDERS[key]
        elif key == "clauses" and isinstance(value, list):
            out[key] = [
                {k: (_measured(v) if k in MEASURED else _norm_value(v, source)) for k, v in clause.items()}
                if isinstance(clause, dict)
                else clause
                for clause in value
            ]
        else:
            out[key] = _norm_value(value, source)
    return out


def normalise_junit(path: Path, source: Path | None = None) -> list[dict] | str:
    """One entry per testcase, in file order; a missing or unreadable file is a string saying so."""
    if not path.exists():
        return "<no JUnit file>"
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return f"<unparsable JUnit file: {exc}>"
    cases = []
    for case in root.iter("testcase"):
        properties = []
        for prop in case.iter("property"):
            name, value = prop.get("name"), prop.get("value")
            if name in MEASURED:
                try:
                    value = _measured(float(value))
                except (TypeError, ValueError):
                    pass
            else:
                value = norm_text(value, source) if value is not None else None
            properties.append([name, value])
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        cases.append(
            {
                "name": case.get("name"),
                "classname": case.get("classname"),
                "properties": properties,
                # not asked for, but part of what a JUnit consumer sees: passed / failure / error / skipped + message
                "outcome": None if outcome is None else [outcome.tag, norm_text(outcome.get("message") or "", source)],
            }
        )
    return cases


# --- record ---------------------------------------------------------------------------------------------------


def _environment(source: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRO_") and k not in ("PYTEST_ADDOPTS", "CI")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source), env.get("PYTHONPATH", "")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ in the recorded tree
    return env


def _run(argv: list[str], *, env: dict[str, str], cwd: Path) -> tuple[int | str, str, str]:
    """Run ``argv`` in its own process group; on timeout the whole group (the local stack's servers too) is killed."""
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGINT, signal.SIGKILL):  # SIGINT first: the check cleans up its stack on an interrupt
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, err = proc.communicate(timeout=60)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            out, err = proc.communicate()
        return f"timeout after {TIMEOUT_S} s", out, err


def record(outdir: Path, source: Path, only: list[str], raw: Path | None) -> int:
    source = source.resolve()
    env = _environment(source)
    probe = subprocess.run(
        [sys.executable, "-c", "import metro_e2e; print(metro_e2e.__file__)"],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    used = Path(probe.stdout.strip() or "?")
    if source not in used.parents:
        print(f"error: with PYTHONPATH={source} metro_e2e comes from {used}, not the source tree", file=sys.stderr)
        print(probe.stderr, file=sys.stderr)
        return 2
    print(f"recording {len(only)} scenario(s) with {used.parent} -> {outdir}", flush=True)
    outdir.mkdir(parents=True, exist_ok=True)
    problems = 0
    for name in only:
        with tempfile.TemporaryDirectory(prefix=f"compare-check-{name}-") as tmp:
            report_path, junit_path = Path(tmp) / "report.json", Path(tmp) / "junit.xml"
            argv = [sys.executable, "-m", "metro_e2e.cli", "check", *SCENARIOS[name]]
            argv += ["--report-json", str(report_path), "--junit-xml", str(junit_path)]
            started = time.monotonic()
            code, out, err = _run(argv, env=env, cwd=Path(tmp))
            took = time.monotonic() - started
            try:
                report = normalise_report(json.loads(report_path.read_text()), source)
            except FileNotFoundError:
                report = "<no report>"
            except json.JSONDecodeError as exc:
                report = f"<unparsable report: {exc}>"
            result = {"exit_code": code, "report": report, "junit": normalise_junit(junit_path, source)}
            if raw is not None:
                keep = raw / name
                keep.mkdir(parents=True, exist_ok=True)
                for path in (report_path, junit_path):
                    if path.exists():
                        (keep / path.name).write_bytes(path.read_bytes())
                (keep / "stdout.txt").write_text(out)
                (keep / "stderr.txt").write_text(err)
        (outdir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        bad = not isinstance(code, int) or isinstance(report, str) or isinstance(result["junit"], str)
        problems += bad
        print(f"  {name:12} exit {code}  ({took:.0f} s){'  <- did not finish with both reports' if bad else ''}")
        if bad:
            print("    " + "\n    ".join(err.strip().splitlines()[-10:]), file=sys.stderr)
    return 1 if problems else 0


# --- compare --------------------------------------------------------------------------------------------------


def _show(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _diff_fields(old: dict, new: dict, where: str, out: list[str], noun: str = "field") -> None:
    for key in [*old, *(k for k in new if k not in old)]:
        if key not in new:
            out.append(f"{where}: {noun} {key!r} removed (was {_show(old[key])})")
        elif key not in old:
            out.append(f"{where}: {noun} {key!r} added ({_show(new[key])})")
        elif old[key] != new[key]:
            label = key if noun == "field" else f"{noun} {key}"
            out.append(f"{where}: {label}\n      old: {_show(old[key])}\n      new: {_show(new[key])}")
    if list(old) == list(new) or set(old) != set(new):
        return
    out.append(f"{where}: {noun} order\n      old: {list(old)}\n      new: {list(new)}")


def _keyed(items: list, key) -> tuple[list, dict]:
    order, by = [], {}
    for i, item in enumerate(items):
        k = key(item) if isinstance(item, dict) else f"#{i}"
        if k in by:
            k = f"{k} (#{i})"
        order.append(k)
        by[k] = item
    return order, by


def _diff_lists(old: list, new: list, key, what: str, where: str, out: list[str], fields) -> None:
    old_order, old_by = _keyed(old, key)
    new_order, new_by = _keyed(new, key)
    for k in old_order:
        if k not in new_by:
            out.append(f"{where}: {what} {k} missing in new (was {_show(old_by[k])})")
    for k in new_order:
        if k not in old_by:
            out.append(f"{where}: {what} {k} only in new ({_show(new_by[k])})")
    common_old = [k for k in old_order if k in new_by]
    common_new = [k for k in new_order if k in old_by]
    if common_old != common_new:
        out.append(f"{where}: {what} order\n      old: {common_old}\n      new: {common_new}")
    for k in common_old:
        fields(old_by[k], new_by[k], f"{where} {what} {k}", out)


def _diff_case(old: dict, new: dict, where: str, out: list[str]) -> None:
    if not isinstance(old, dict) or not isinstance(new, dict):
        if old != new:
            out.append(f"{where}\n      old: {_show(old)}\n      new: {_show(new)}")
        return
    rest_old = {k: v for k, v in old.items() if k != "properties"}
    rest_new = {k: v for k, v in new.items() if k != "properties"}
    _diff_fields(rest_old, rest_new, where, out)
    props_old, props_new = old.get("properties") or [], new.get("properties") or []
    if props_old == props_new:
        return
    as_old, as_new = {p[0]: p[1] for p in props_old}, {p[0]: p[1] for p in props_new}
    before = len(out)
    _diff_fields(as_old, as_new, where, out, noun="property")
    if len(out) == before:  # same names and values: the order or a repeated name differs
        out.append(f"{where}: properties\n      old: {_show(props_old)}\n      new: {_show(props_new)}")


def _clause_key(clause: dict) -> str:
    return str(clause.get("id"))


def _case_key(case: dict) -> str:
    clause = next((p[1] for p in case.get("properties") or [] if p[0] == "clause"), None)
    return f"{clause or '?'} ({case.get('name')})"


def diff_scenario(old: dict, new: dict) -> list[str]:
    out: list[str] = []
    if old.get("exit_code") != new.get("exit_code"):
        out.append(f"exit code: old {old.get('exit_code')}, new {new.get('exit_code')}")
    r_old, r_new = old.get("report"), new.get("report")
    if isinstance(r_old, dict) and isinstance(r_new, dict):
        top_old = {k: v for k, v in r_old.items() if k != "clauses"}
        top_new = {k: v for k, v in r_new.items() if k != "clauses"}
        _diff_fields(top_old, top_new, "report", out)
        c_old, c_new = r_old.get("clauses"), r_new.get("clauses")
        if isinstance(c_old, list) and isinstance(c_new, list):
            _diff_lists(c_old, c_new, _clause_key, "clause", "report", out, _diff_fields)
        elif c_old != c_new:
            out.append(f"report: clauses\n      old: {_show(c_old)}\n      new: {_show(c_new)}")
    elif r_old != r_new:
        out.append(f"report\n      old: {_show(r_old)}\n      new: {_show(r_new)}")
    j_old, j_new = old.get("junit"), new.get("junit")
    if isinstance(j_old, list) and isinstance(j_new, list):
        _diff_lists(j_old, j_new, _case_key, "testcase", "junit", out, _diff_case)
    elif j_old != j_new:
        out.append(f"junit\n      old: {_show(j_old)}\n      new: {_show(j_new)}")
    other = sorted(set(old) ^ set(new) | {k for k in set(old) & set(new) - {"exit_code", "report", "junit"}})
    for key in other:
        if old.get(key) != new.get(key):
            out.append(f"{key}\n      old: {_show(old.get(key))}\n      new: {_show(new.get(key))}")
    if not out and old != new:  # a safety net: nothing above saw it, the files still differ
        out.append(f"differs\n      old: {_show(old)}\n      new: {_show(new)}")
    return out


def compare(base: Path, new: Path) -> int:
    names = sorted({p.stem for p in base.glob("*.json")} | {p.stem for p in new.glob("*.json")})
    if not names:
        print(f"nothing to compare: no <scenario>.json in {base} or {new}")
        return 2
    differing = 0
    for name in names:
        paths = base / f"{name}.json", new / f"{name}.json"
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            print(f"{name}: DIFFERS\n  missing: {', '.join(missing)}")
            differing += 1
            continue
        lines = diff_scenario(*(json.loads(p.read_text()) for p in paths))
        if lines:
            differing += 1
            print(f"{name}: DIFFERS ({len(lines)} difference(s))")
            for line in lines:
                print(f"  - {line}")
        else:
            print(f"{name}: equal")
    print(f"\n{len(names) - differing}/{len(names)} scenario(s) equal" + (f", {differing} differ" if differing else ""))
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="run the scenarios and write OUTDIR/<scenario>.json")
    rec.add_argument("outdir", type=Path)
    rec.add_argument("--source", type=Path, default=REPO, help=f"tree whose code runs (default {REPO})")
    rec.add_argument(
        "--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS), help="record only these scenarios"
    )
    rec.add_argument("--keep-raw", type=Path, default=None, metavar="DIR", help="also keep raw reports and output")
    cmp_ = sub.add_parser("compare", help="compare two recordings; exit 0 only if every scenario is equal")
    cmp_.add_argument("basedir", type=Path)
    cmp_.add_argument("newdir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        return record(args.outdir, args.source, args.only, args.keep_raw)
    return compare(args.basedir, args.newdir)


if __name__ == "__main__":
    raise SystemExit(main())
