"""What a run leaves and how it is read back, without a platform: the bundle and its manifest, ``metro-e2e report``,
``metro-e2e diff``, the ``--baseline`` gate, the JUnit file's known failures and the HTML page's content.

The page in a real browser is ``tests/integration/test_html_browser.py``; ``check --bundle/--baseline/--html``
against a platform is ``tests/integration/test_results_check.py``.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from metro_e2e import cli
from metro_e2e.conformance import bundle, compare, html, runner
from metro_e2e.conformance.catalogue import CLAUSES
from metro_e2e.conformance.report import complete_junit
from metro_e2e.errors import ConfigError, InputError
from tests.reports import a_report, fake_session, with_durations

SECRET = "minio123"


def files_for(report: dict) -> dict[str, bytes]:
    return {
        "report.json": json.dumps(report).encode(),
        "junit.xml": b"<testsuites/>",
        "config.json": json.dumps({"settings": {"s3_secret_key": SECRET}}).encode(),
        "versions.json": b"{}",
        "evidence/MLF-1.jsonl": json.dumps({"clause": "MLF-1", "what": "GET /mlflow", "status": 200}).encode() + b"\n",
        "stack-logs/mlflow.log": f"started with key {SECRET}\n".encode(),
    }


def write_bundle(tmp_path, report: dict | None = None, name: str = "run.tar.gz"):
    report = report or a_report()
    return bundle.write(tmp_path / name, files_for(report), report=report, mask=lambda t: t.replace(SECRET, "***"))


def members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def rewrite(path, change) -> None:
    """Rebuild the archive at ``path`` with ``change(files)`` applied (name -> bytes; None drops a file)."""
    files = members(path)
    change(files)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


# --- the bundle -------------------------------------------------------------------------------------------------


def test_a_bundle_holds_every_file_with_its_sha256_and_no_secret(tmp_path):
    path = write_bundle(tmp_path)
    files = members(path)
    manifest = json.loads(files.pop("manifest.json"))
    assert manifest["format"] == bundle.FORMAT and manifest["run_id"] == "r1"
    assert set(manifest["files"]) == set(files) >= set(bundle.REQUIRED) | {"stack-logs/mlflow.log"}
    import hashlib

    for name, data in files.items():
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        assert SECRET.encode() not in data, name
    loaded = bundle.load(path)
    assert loaded.is_bundle and loaded.report["run_id"] == "r1"
    assert loaded.evidence() == {"MLF-1": [{"clause": "MLF-1", "what": "GET /mlflow", "status": 200}]}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda f: f.pop("junit.xml"), "junit.xml is listed in the manifest but missing from the archive"),
        (lambda f: f.update({"report.html": b"<p>added</p>"}), "report.html is in the archive but not in its manifest"),
        (lambda f: f.update({"versions.json": b'{"x": 1}'}), "versions.json's sha256 is"),
        (lambda f: f.pop("manifest.json"), "it has no manifest.json"),
        (lambda f: f.update({"manifest.json": b"[]"}), "is not a metro-e2e-bundle/1 manifest"),
    ],
    ids=["file-missing", "file-added", "wrong-hash", "no-manifest", "bad-manifest"],
)
def test_a_bundle_that_does_not_match_its_manifest_is_refused(tmp_path, change, says):
    path = write_bundle(tmp_path)
    rewrite(path, change)
    with pytest.raises(InputError, match="is not intact") as caught:
        bundle.load(path)
    assert says in str(caught.value)


def test_a_manifest_without_a_required_file_is_refused(tmp_path):
    path = write_bundle(tmp_path)

    def drop_config(files):
        files.pop("config.json")
        manifest = json.loads(files["manifest.json"])
        del manifest["files"]["config.json"]
        files["manifest.json"] = json.dumps(manifest).encode()

    rewrite(path, drop_config)
    with pytest.raises(InputError, match="does not list config.json, which every bundle has"):
        bundle.load(path)


def test_a_member_outside_the_bundle_is_refused(tmp_path):
    path = write_bundle(tmp_path)
    rewrite(path, lambda f: f.update({"../escape": b"x"}))
    with pytest.raises(InputError, match="'../escape', which is not a plain file inside the bundle"):
        bundle.load(path)


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"not json", "is not JSON"), (b'{"clauses": []}', "is not a metro-e2e report: at the top level, ")],
)
def test_a_file_that_is_not_a_report_is_refused_in_one_sentence(tmp_path, capsys, content, says):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=says):
        bundle.load(path)
    assert cli.main(["report", str(path)]) == InputError.exit_code
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_report_prints_the_table_from_a_bundle_or_a_json_report(tmp_path, capsys):
    report = a_report(MLF_3="failed")
    path = write_bundle(tmp_path, report)
    (tmp_path / "r.json").write_text(json.dumps(report))
    assert cli.main(["report", str(path)]) == 0
    from_bundle = capsys.readouterr().out
    assert "bundle of run r1, 6 files, sha256 verified" in from_bundle
    assert cli.main(["report", str(tmp_path / "r.json")]) == 0
    from_json = capsys.readouterr().out
    assert runner.table(report) in from_bundle and runner.table(report) in from_json
    assert "MLF-3   failed" in from_json


# --- diff -------------------------------------------------------------------------------------------------------


def test_diff_lists_each_kind_of_change_and_exits_1_on_a_regression(tmp_path, capsys):
    old = a_report(MLF_3="failed", S3_5="warned", KFP_2="failed", SRV_6="failed")
    new = with_durations(
        a_report(S3_4="failed", MLF_3="passed", S3_5="failed", KFP_2="blocked", SRV_6="failed"), MLF_1=12.0, S3_1=5.5
    )
    new["clauses"][[c["id"] for c in new["clauses"]].index("SRV-6")]["detail"] = "failed: p95 over budget"
    found = compare.diff(old, new)
    assert [c.id for c in found.worse] == ["S3-4", "S3-5"]
    assert [c.id for c in found.better] == ["MLF-3"]
    assert [c.id for c in found.changed] == ["KFP-2", "SRV-6"]
    assert [c.id for c in found.slower] == ["MLF-1"], "S3-1: 5.5 x but only 4.5 s more, under the floor"
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert cli.main(["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 1
    out = capsys.readouterr().out
    assert "worse: 2" in out and "S3-4    passed -> failed" in out and "3 regression(s)" in out
    assert "MLF-1   1.0 s -> 12.0 s (12.0 x)" in out


def test_diff_of_a_run_with_itself_or_only_noisy_numbers_is_no_regression(tmp_path, capsys):
    old = a_report()
    new = copy.deepcopy(old)
    for c in new["clauses"]:
        c["detail"] = c["detail"].replace("12 ms", "15 ms").replace("0a1b2c3d4e", "9f8e7d6c5b")
        c["duration_s"] = 1.8  # 1.8 x: under the ratio
    assert compare.diff(old, new).regressions == [] and compare.diff(old, new).changed == []
    (tmp_path / "a.json").write_text(json.dumps(old))
    (tmp_path / "b.json").write_text(json.dumps(new))
    assert cli.main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    assert "no regression" in capsys.readouterr().out


def test_diff_reads_bundles_and_its_thresholds_are_options(tmp_path, capsys):
    old, new = a_report(), with_durations(a_report(), MLF_1=3.0)
    a, b = write_bundle(tmp_path, old, "a.tar.gz"), write_bundle(tmp_path, new, "b.tar.gz")
    assert cli.main(["diff", str(a), str(b)]) == 0, "3 x but 2 s more: under the 5 s floor"
    assert cli.main(["diff", str(a), str(b), "--slower-floor", "1", "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["regressions"] == ["MLF-1"]
    assert cli.main(["diff", str(a), str(b), "--slower-ratio", "0"]) == ConfigError.exit_code
    assert "--slower-ratio 0 is not a positive number" in capsys.readouterr().err


# --- the --baseline gate ----------------------------------------------------------------------------------------


def test_a_known_failure_does_not_fail_the_gate_but_a_regression_does():
    baseline = a_report(MLF_3="failed", MLF_4="blocked", MLF_5="blocked")
    still = a_report(MLF_3="failed", MLF_4="blocked", MLF_5="blocked")
    decision = compare.gate(still, baseline, strict=False)
    assert decision.known == {
        "MLF-3": "failed: expected 200, got 500",
        "MLF-4": "blocked: expected 200, got 500",
        "MLF-5": "blocked: expected 200, got 500",
    }
    assert decision.exit_code == 0, "only known failures (and what they block): the gate passes"
    worse = a_report(MLF_3="failed", MLF_4="blocked", MLF_5="blocked", S3_4="failed")
    decision = compare.gate(worse, baseline, strict=False)
    assert decision.exit_code == 1 and [c.id for c in decision.diff.regressions] == ["S3-4"]
    assert decision.summary("old.json")["known_failures"] == ["MLF-3", "MLF-4", "MLF-5"]


def test_a_blocked_clause_is_known_only_when_known_failures_block_it():
    """Blocked means never checked: a clause blocked in the baseline is excused only while a known failure blocks it
    now too, and one that was blocked there and fails now is a new failure."""
    baseline = a_report(MLF_3="failed", MLF_4="blocked", MLF_5="blocked")
    assert set(compare.known_failures(baseline, baseline)) == {"MLF-3", "MLF-4", "MLF-5"}
    now = a_report(MLF_3="passed", MLF_4="failed", MLF_5="blocked")
    assert compare.known_failures(now, baseline) == {}, "MLF-4 was never checked in the baseline"
    assert compare.gate(now, baseline, strict=False).exit_code == 1
    s3_now = a_report(MLF_3="failed", S3_2="failed", S3_3="blocked", MLF_4="blocked", MLF_5="blocked")
    assert set(compare.known_failures(s3_now, baseline)) == {"MLF-3"}, "S3-2 is new: what it blocks is not known"
    assert compare.gate(s3_now, baseline, strict=True).exit_code == 1


def test_a_baseline_that_checked_nothing_behind_the_gateway_or_another_catalogue_is_refused():
    unreachable = a_report(**{c.id.replace("-", "_"): "blocked" for c in CLAUSES if c.id != "GW-1"}, GW_1="failed")
    with pytest.raises(ConfigError, match="whose GW-1 failed: nothing behind the gateway was checked"):
        compare.usable_baseline(unreachable, "old.json")
    other = a_report()
    other["catalogue_version"] = "0.0.9+0123456789ab"
    with pytest.raises(ConfigError, match="checked clause catalogue 0.0.9\\+0123456789ab, this metro-e2e checks"):
        compare.usable_baseline(other, "old.json")
    compare.usable_baseline(a_report(MLF_3="failed"), "old.json")  # a complete run of this catalogue is usable


def test_a_known_failure_does_not_explain_an_error_outside_the_clauses(tmp_path, monkeypatch):
    """pytest failed (a teardown error) and the only failing clause is a known one: the check still exits 1."""
    baseline = tmp_path / "old.json"
    baseline.write_text(json.dumps(a_report(MLF_3="failed")))
    from metro_e2e.conformance.options import Options

    request = Options(url="http://gw.test", report_json=str(tmp_path / "r.json"), baseline=str(baseline))
    known_only = fake_session(a_report(MLF_3="failed"), pytest.ExitCode.TESTS_FAILED)  # MLF-3's test failed
    monkeypatch.setattr(pytest, "main", known_only)
    assert runner.run(request).exit_code == 0, "pytest failed because of the known failure alone"
    with_teardown = fake_session(a_report(MLF_3="failed"), pytest.ExitCode.TESTS_FAILED, teardown_error="SRV-6")
    monkeypatch.setattr(pytest, "main", with_teardown)
    outcome = runner.run(request)
    assert outcome.report["baseline"]["known_failures"] == ["MLF-3"]
    assert outcome.exit_code == 1 and "error outside the clauses" in outcome.stopped


def test_two_outputs_on_one_path_are_refused(tmp_path):
    from metro_e2e.conformance.options import Options

    same = str(tmp_path / "out")
    with pytest.raises(ConfigError, match="--report-json and --bundle are the same file"):
        runner.validate(Options(report_json=same, bundle=same))


def test_the_bundle_of_a_check_that_cannot_start_does_not_need_its_junit_path(tmp_path):
    """``--junit-xml`` may be the bad input itself: the bundle is written anyway, with its own JUnit file."""
    from metro_e2e.conformance.options import Options

    request = Options(junit_xml="/proc/metro-e2e/junit.xml", bundle=str(tmp_path / "b.tar.gz"))
    written = runner.write_not_run(request, "http://gw.test", ConfigError("bad", setting="x", source="y"))
    assert written == [str(tmp_path / "b.tar.gz")]
    assert {c["verdict"] for c in bundle.load(tmp_path / "b.tar.gz").report["clauses"]} == {"error"}


def test_a_bundle_holds_only_this_runs_evidence(tmp_path, monkeypatch):
    """An --evidence-dir that holds an earlier run's records: they do not enter this run's bundle or page, and the
    folder gets this run's."""
    from metro_e2e.conformance.options import Options

    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "MLF-1.jsonl").write_text(json.dumps({"what": "an earlier run's request"}) + "\n")

    def session(args, plugins=()):
        options = next(p.options for p in plugins if hasattr(p, "options"))
        Path(options.evidence_dir).mkdir(parents=True, exist_ok=True)
        (Path(options.evidence_dir) / "GW-1.jsonl").write_text(json.dumps({"what": "this run's"}) + "\n")
        return fake_session(a_report(), pytest.ExitCode.OK)(args, plugins)

    monkeypatch.setattr(pytest, "main", session)
    out = tmp_path / "b.tar.gz"
    runner.run(Options(url="http://gw.test", evidence_dir=str(folder), bundle=str(out), html=str(tmp_path / "p.html")))
    assert bundle.load(out).evidence() == {"GW-1": [{"what": "this run's"}]}
    assert "an earlier run" not in (tmp_path / "p.html").read_text()
    assert (folder / "GW-1.jsonl").is_file(), "the folder the user gave gets this run's evidence"


def test_a_clause_that_took_no_time_before_is_compared_without_dividing_by_zero(capsys):
    old, new = with_durations(a_report(), MLF_1=0.0), with_durations(a_report(), MLF_1=6.0)
    found = compare.diff(old, new)
    assert [c.id for c in found.slower] == ["MLF-1"]
    assert "MLF-1   0.0 s -> 6.0 s" in "\n".join(found.lines())


def test_evidence_lines_that_are_not_records_are_shown_as_text():
    records = bundle.evidence_records({"evidence/GW-1.jsonl": b'[1, 2]\n"text"\nnot json\n{"what": "ok"}\n'})
    assert records == {"GW-1": [{"note": "[1, 2]"}, {"note": '"text"'}, {"note": "not json"}, {"what": "ok"}]}
    assert "[1, 2]" in html.page(a_report(), records)


def test_the_gate_excuses_nothing_it_should_not():
    baseline = a_report(MLF_3="failed", S3_4="error", MLF_2="skipped")
    assert compare.gate(a_report(MLF_3="error"), baseline, strict=False).exit_code == 1, "failed -> error: undecided"
    assert compare.gate(a_report(S3_4="error"), baseline, strict=False).exit_code == 1, "an error is never known"
    assert compare.gate(a_report(MLF_2="failed"), baseline, strict=False).exit_code == 1, "skipped -> failed is new"
    assert compare.gate(a_report(S3_5="warned"), a_report(), strict=False).exit_code == 1, "passed -> warned"
    assert compare.gate(a_report(SRV_6="skipped"), a_report(), strict=False).exit_code == 1, "no longer checked"
    assert compare.gate(with_durations(a_report(), MLF_1=9.0), a_report(), strict=False).exit_code == 1, "slower"
    stopped = a_report()
    stopped["stopped"] = "was interrupted"
    with pytest.raises(ConfigError, match="is the report of a run that was interrupted"):
        compare.usable_baseline(stopped, "old.json")


def test_a_known_failure_is_skipped_in_the_junit_file_and_named_in_the_report(tmp_path):
    report = a_report(MLF_3="failed", S3_4="failed")
    report["baseline"] = compare.gate(report, a_report(MLF_3="failed"), strict=False).summary("old.json")
    assert compare.gate(report, a_report(MLF_3="failed"), strict=False).exit_code == 1
    junit = complete_junit(report, tmp_path / "junit.xml")
    cases = {
        next(p.get("value") for p in case.iter("property") if p.get("name") == "clause"): case
        for case in ET.parse(junit).getroot().iter("testcase")
    }
    assert cases["MLF-3"].find("skipped").get("message").startswith("known failure (also in the baseline)")
    assert cases["S3-4"].find("skipped") is None and cases["S3-4"].find("failure") is not None
    assert runner.baseline_lines(report)[1:] == [
        "  known failure MLF-3: failed, as in the baseline",
        "  regression    S3-4: failed: failed: expected 200, got 500",
    ]
    jsonschema = pytest.importorskip("jsonschema")
    from metro_e2e.conformance.report import SCHEMA

    jsonschema.validate(report, json.loads(SCHEMA.read_text()))


# --- the page's content (the browser test renders it) ----------------------------------------------------------


def test_the_page_escapes_what_it_shows_and_fetches_nothing():
    report = a_report(MLF_1="failed")
    report["clauses"][[c["id"] for c in report["clauses"]].index("MLF-1")]["detail"] = "<script>alert(1)</script>"
    page = html.page(report, {"MLF-1": [{"what": "GET", "body_excerpt": "<img src=http://x.example/a.png>"}]})
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<img" not in page and "&lt;img src=http://x.example/a.png&gt;" in page
    assert f'content="{html.CSP}"' in page and "default-src 'none'" in html.CSP
    from html.parser import HTMLParser

    fetched = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            fetched.extend(f"{tag} {k}={v}" for k, v in attrs if k in ("src", "href") or tag == "link")

    Links().feed(page)
    assert fetched == [], "nothing the browser would fetch"


def test_a_reader_that_goes_away_ends_the_command_quietly(capfd):
    """``metro-e2e report RUN | head``: the closed pipe is not an internal error."""
    from metro_e2e._console import guarded

    def body():
        raise BrokenPipeError(32, "Broken pipe")

    assert guarded("metro-e2e", body) == 141
    assert "error" not in capfd.readouterr().err


def test_the_evidence_reaches_the_users_folder_however_the_run_ends(tmp_path, monkeypatch):
    """Staged for the bundle, the evidence is still copied to --evidence-dir when the run is interrupted before its
    report (the staged folder is deleted with the temp folder)."""
    from metro_e2e.conformance.options import Options
    from metro_e2e.errors import Interrupted

    def interrupted(args, plugins=()):
        options = next(p.options for p in plugins if hasattr(p, "options"))
        Path(options.evidence_dir).mkdir(parents=True, exist_ok=True)
        (Path(options.evidence_dir) / "GW-1.jsonl").write_text('{"what": "before the interrupt"}\n')
        return pytest.ExitCode.INTERRUPTED

    monkeypatch.setattr(pytest, "main", interrupted)
    folder = tmp_path / "evidence"
    with pytest.raises(Interrupted):
        runner.run(Options(url="http://gw.test", evidence_dir=str(folder), bundle=str(tmp_path / "b.tar.gz")))
    assert (folder / "GW-1.jsonl").read_text() == '{"what": "before the interrupt"}\n'


def test_a_collection_error_is_not_an_interrupt(tmp_path, monkeypatch):
    """pytest ends a session whose collection failed as 'interrupted': check says it ended before any clause ran
    (exit 1), not that the user interrupted it (130)."""
    from types import SimpleNamespace

    from metro_e2e.conformance.options import Options
    from metro_e2e.errors import Interrupted, MetroE2EError

    def collection_failed(args, plugins=()):
        for plugin in plugins:
            if hasattr(plugin, "pytest_collectreport"):
                plugin.pytest_collectreport(SimpleNamespace(failed=True))
        return pytest.ExitCode.INTERRUPTED

    monkeypatch.setattr(pytest, "main", collection_failed)
    with pytest.raises(MetroE2EError, match="ended before any clause ran") as caught:
        runner.run(Options(url="http://gw.test", report_json=str(tmp_path / "r.json")))
    assert not isinstance(caught.value, Interrupted)


def test_a_write_that_fails_leaves_no_half_file(tmp_path):
    """The report, the page and the bundle are written beside their path and renamed: a failed write leaves neither
    the file nor its ``.partial``, and says which option chose the path."""
    from metro_e2e.conformance.report import write_atomically

    def fails(partial):
        partial.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match="cannot write the bundle .*: No space left on device") as caught:
        write_atomically(tmp_path / "b.tar.gz", fails, what="the bundle", option="--bundle")
    assert "choose a writable --bundle path" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
