"""Isolation and secrecy: concurrent checks, no secret in any output, nothing listening beyond loopback."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import proc_stat
from .test_check import check, verdicts


@pytest.fixture(scope="module")
def metro_seeded_stack(tmp_path_factory):
    from metro_e2e.stack import LocalStack, StackOptions

    from .conftest import _require_nginx

    _require_nginx()
    with LocalStack(StackOptions(run_dir=tmp_path_factory.mktemp("hardening"), seed_model=True)) as stack:
        yield stack


def test_two_checks_at_once_do_not_collide(metro_seeded_stack, tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    for f in folders:
        f.mkdir()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda f: check(f, "--url", metro_seeded_stack.gateway_url, "--skip", "KFP"), folders))
    (code_a, report_a, out_a), (code_b, report_b, out_b) = runs
    assert code_a == 0 and code_b == 0, out_a[-1500:] + out_b[-1500:]
    assert report_a["namespace"] != report_b["namespace"]
    assert report_a["leftovers"] == report_b["leftovers"] == []
    assert verdicts(report_a) == verdicts(report_b)
    from metro_e2e.storage import Storage

    storage = Storage(metro_seeded_stack.config())
    assert storage.list_keys("ml-data", "metro-e2e/") == [] and storage.list_keys("ml-models", "metro-e2e/") == []


def test_no_secret_value_appears_in_any_output(metro_seeded_stack, tmp_path):
    secret = "s3cr3t-Only-For-This-Test-41"  # not the stack's: S3-1 fails, and the failure paths must not leak it
    evidence, junit = tmp_path / "evidence", tmp_path / "junit.xml"
    code, report, out = check(
        tmp_path,
        "--url",
        metro_seeded_stack.gateway_url,
        "--skip",
        "KFP",
        "--evidence-dir",
        str(evidence),
        "--junit-xml",
        str(junit),
        env={"METRO_S3_SECRET_KEY": secret},
    )
    assert code == 1 and "SignatureDoesNotMatch" in next(c["detail"] for c in report["clauses"] if c["id"] == "S3-1")
    texts = [out, json.dumps(report), junit.read_text()]
    texts += [p.read_text(errors="replace") for p in evidence.rglob("*") if p.is_file()]
    texts += [p.read_text(errors="replace") for p in metro_seeded_stack.log_dir.glob("*.log")]
    assert all(secret not in text for text in texts)
    bad = subprocess.run(
        [sys.executable, "-m", "metro_e2e.cli", "config", "--url", "http://gw.test"],
        capture_output=True,
        text=True,
        env={**os.environ, "METRO_S3_SECRET_KEY": secret},
    )
    assert bad.returncode == 0 and secret not in bad.stdout + bad.stderr and "***" in bad.stdout


def test_nothing_the_stack_starts_listens_beyond_loopback(metro_seeded_stack):
    if not shutil.which("ss"):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI must install iproute2 (README set-up commands): `ss` lists the stack's listening sockets")
        pytest.skip("needs `ss` (Debian package iproute2) to list listening sockets")
    pids = {str(s.pid) for s in metro_seeded_stack.services.values() if s.pid}
    pids.add(str(metro_seeded_stack.serving.pid))
    listening = _listening_sockets()
    ours = [(addr, pid) for addr, pid in listening if pid in pids or _parent_in(pid, pids)]
    assert ours, "the stack's listening sockets were found"
    assert all(addr.startswith(("127.0.0.1:", "[::1]:")) for addr, _ in ours), ours


def _listening_sockets() -> list[tuple[str, str]]:
    """(local address, pid) for every listening TCP socket ``ss`` can attribute to a process."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10).stdout
    return [(line.split()[3], pid) for line in out.splitlines() for pid in re.findall(r"pid=(\d+)", line)]


def _parent_in(pid: str, parents: set[str]) -> bool:
    """Whether ``pid`` descends from one of ``parents`` (workers of gunicorn, nginx, uvicorn)."""
    seen = 0
    while pid and pid != "1" and seen < 10:
        try:
            stat = proc_stat(pid)
        except OSError:
            return False
        pid = stat[1]
        if pid in parents:
            return True
        seen += 1
    return False
