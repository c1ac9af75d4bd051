"""The conformance engine without a platform: catalogue, verdict rules, report schema, marker discipline."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from metro_e2e.conformance import catalogue, engine
from metro_e2e.conformance.catalogue import BY_ID, CLAUSES
from metro_e2e.conformance.engine import BLOCKED, FAILED, PASSED, SKIPPED, WARNED, ClauseResult, gate
from metro_e2e.conformance.options import Options
from tests.reports import fake_session

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]


def _contract_rows() -> list[list[str]]:
    for candidate in (ROOT.parent / "shared" / "CONTRACT.md", ROOT / "CONTRACT.md"):
        if candidate.exists():
            text = candidate.read_text()
            return [
                [c.strip() for c in line.strip().strip("|").split("|")]
                for line in text.splitlines()
                if re.match(r"^\| [A-Z0-9]+-\d ", line)
            ]
    pytest.skip("CONTRACT.md is not beside this checkout (../shared/CONTRACT.md)")


def test_catalogue_is_contract_md():
    rows = _contract_rows()
    assert [r[0] for r in rows] == [c.id for c in CLAUSES]
    for row, clause in zip(rows, CLAUSES, strict=True):
        deps = tuple(d.strip() for d in row[3].split(",") if d.strip())
        assert (row[1], row[2], deps, row[4]) == (clause.level, clause.mode, clause.depends_on, clause.promise)


def test_dependencies_come_first_in_catalogue_order():
    seen = set()
    for clause in CLAUSES:
        assert set(clause.depends_on) <= seen, clause.id
        seen.add(clause.id)


def _ok(*ids):
    return {i: ClauseResult(i, BY_ID[i].level, BY_ID[i].mode, PASSED, "") for i in ids}


def test_failed_dependency_blocks_and_skipped_dependency_skips():
    results = _ok("GW-1")
    results["S3-1"] = ClauseResult("S3-1", "core", "read", FAILED, "refused")
    assert gate(BY_ID["S3-2"], Options(), results) == (BLOCKED, "depends on S3-1, which failed")
    results["S3-2"] = ClauseResult("S3-2", "core", "read", BLOCKED, "x")
    assert gate(BY_ID["S3-3"], Options(), results)[0] == BLOCKED
    results = _ok("GW-1")
    results["KFP-1"] = ClauseResult("KFP-1", "core", "read", SKIPPED, "--skip KFP")
    verdict, reason = gate(BY_ID["KFP-2"], Options(step_image="img"), results)
    assert verdict == SKIPPED and "KFP-1" in reason


@pytest.mark.parametrize(
    ("options", "clause_id", "words"),
    [
        (Options(), "PRM-2", "--allow-promote"),
        (Options(allow_promote=True), "SRV-5", "--restart-serving"),
        (Options(quick=True), "S3-2", "--quick"),
        (Options(skip=("KFP",)), "KFP-1", "--skip KFP"),
        (Options(skip=("SRV-6",)), "SRV-6", "--skip SRV-6"),
        (Options(), "KFP-2", "--step-image"),
    ],
)
def test_skips_name_the_enabling_option(options, clause_id, words):
    verdict, reason = gate(BY_ID[clause_id], options, _ok(*[c.id for c in CLAUSES]))
    assert verdict == SKIPPED and words in reason


def test_quick_runs_only_the_quick_clauses():
    runs = [c.id for c in CLAUSES if gate(c, Options(quick=True), _ok(*[x.id for x in CLAUSES])) is None]
    assert runs == list(catalogue.QUICK)


def test_verdicts_and_exit_code():
    assert engine.verdict(BY_ID["S3-5"], False, strict=False) == WARNED
    assert engine.verdict(BY_ID["S3-5"], False, strict=True) == FAILED
    assert engine.verdict(BY_ID["S3-1"], False, strict=False) == FAILED
    warned = [ClauseResult("S3-5", "advisory", "read", WARNED, "")]
    assert engine.exit_code(warned, strict=False) == 0 and engine.exit_code(warned, strict=True) == 1
    assert engine.exit_code([ClauseResult("S3-2", "core", "read", BLOCKED, "")], strict=False) == 1
    assert engine.exit_code([ClauseResult("KFP-1", "core", "read", SKIPPED, "")], strict=True) == 0


def test_report_schema_accepts_a_report_and_rejects_a_bad_verdict():
    jsonschema = pytest.importorskip("jsonschema")
    from metro_e2e.config import load_config
    from metro_e2e.conformance.context import RunContext
    from metro_e2e.conformance.report import SCHEMA, build_report
    from metro_e2e.conformance.session import MetroRun

    run = MetroRun(RunContext(config=load_config(environ={})))
    run.results = _ok("GW-1")
    report = build_report(run)
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(report, schema)
    assert [c["id"] for c in report["clauses"]] == [c.id for c in CLAUSES]
    assert report["clauses"][1]["verdict"] == SKIPPED and "not selected" in report["clauses"][1]["detail"]
    report["clauses"][0]["verdict"] = "ok"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schema)


def test_unknown_clause_id_is_a_usage_error(pytester):
    pytester.makepyfile('import pytest\n\n@pytest.mark.clause("GW-9")\ndef test_x():\n    pass\n')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown clause*GW-9*"])


def test_a_clause_without_a_test_is_a_usage_error(pytester):
    pytester.makepyfile('import pytest\n\n@pytest.mark.clause("GW-1")\ndef test_x():\n    pass\n')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*clauses without a test: S3-1, S3-2*"])


def test_a_clause_claimed_twice_is_a_usage_error(pytester):
    body = "\n".join(f'@pytest.mark.clause("{c.id}")\ndef test_{i}():\n    pass\n' for i, c in enumerate(CLAUSES))
    body += '\n@pytest.mark.clause("GW-1")\ndef test_again():\n    pass\n'
    pytester.makepyfile("import pytest\n\n" + body)
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*clause GW-1 is claimed twice*"])


def test_check_options_are_validated():
    from metro_e2e.conformance.runner import validate
    from metro_e2e.errors import ConfigError

    with pytest.raises(ConfigError, match="--skip XYZ names no clause"):
        validate(Options(skip=("XYZ",)))
    with pytest.raises(ConfigError, match="--quick checks only"):
        validate(Options(quick=True, allow_promote=True))
    with pytest.raises(ConfigError, match="add --allow-promote"):
        validate(Options(restart_serving="true"))
    validate(Options(skip=("KFP", "SRV-6")))


def test_every_clause_has_a_check_and_a_test():
    from metro_e2e.conformance import checks, suite

    assert set(checks.CHECKS) == set(BY_ID)
    claimed = {f.pytestmark[0].args[0]: n for n, f in vars(suite).items() if n.startswith("test_")}
    assert claimed == {c.id: c.test_name for c in CLAUSES}


def _promote_mode_run(config, storage, *, promote: bool = True):
    """A run whose PRM-2 backed up latest/ (iris-model v1) in its namespace and, with ``promote``, replaced it
    with the check's model (v9)."""
    from metro_e2e import promotion
    from metro_e2e.conformance.context import RunContext
    from metro_e2e.promotion.backup import Backup

    ctx = RunContext(config=config)
    for prefix, body in (("old/", b"v1"), ("check/", b"v9")):
        storage.put_bytes("ml-models", prefix + "MLmodel", b"flavors: {}")
        storage.put_bytes("ml-models", prefix + "model.pkl", body)
    old = {"name": "iris-model", "version": "1", "source_uri": "s3://ml-models/old/"}
    promotion.copy_to_latest(storage, bucket="ml-models", source_prefix="old/", latest_prefix="latest/", record=old)
    before = promotion.read_marker(storage, bucket="ml-models", latest_prefix="latest/")
    ctx.created.s3.append(("ml-models", ctx.namespace))
    for rel in ("MLmodel", "model.pkl"):
        storage.copy("ml-models", "latest/" + rel, ctx.namespace + "previous-latest/" + rel)
    ctx.shared.previous_latest = Backup(ctx.namespace + "previous-latest/", old, before)
    ctx.shared.promoting = ctx.name
    if promote:
        mine = {"name": ctx.name, "version": "9", "source_uri": "s3://ml-models/check/"}
        promotion.copy_to_latest(
            storage, bucket="ml-models", source_prefix="check/", latest_prefix="latest/", record=mine
        )
    return ctx


def _latest(storage) -> tuple[dict, bytes]:
    from metro_e2e import promotion

    marker = promotion.read_marker(storage, bucket="ml-models", latest_prefix="latest/")
    return marker, storage.get_bytes("ml-models", "latest/model.pkl")


def test_cleanup_puts_the_previous_latest_back_and_removes_the_backup(metro_unit_platform):
    from metro_e2e.conformance.context import cleanup
    from metro_e2e.storage import Storage

    storage = Storage(metro_unit_platform)
    ctx = _promote_mode_run(metro_unit_platform, storage)
    assert cleanup(ctx) == []
    marker, body = _latest(storage)
    assert (marker["name"], marker["version"], body) == ("iris-model", "1", b"v1")
    assert storage.list_keys("ml-models", ctx.namespace) == []


def test_cleanup_leaves_latest_and_drops_the_backup_when_the_promotion_never_changed_it(metro_unit_platform):
    """The check's promotion failed before its swap (latest/ not writable, a staging error): nothing to undo."""
    from metro_e2e.conformance.context import cleanup
    from metro_e2e.storage import Storage

    storage = Storage(metro_unit_platform)
    ctx = _promote_mode_run(metro_unit_platform, storage, promote=False)
    assert cleanup(ctx) == []
    assert _latest(storage)[0]["version"] == "1" and storage.list_keys("ml-models", ctx.namespace) == []


def test_cleanup_puts_the_files_back_when_the_checks_marker_write_was_lost(metro_unit_platform):
    """S3 acknowledged the check's marker and kept the old one: the old marker over the check's files."""
    import json as json_

    from metro_e2e import promotion
    from metro_e2e.conformance.context import cleanup
    from metro_e2e.storage import Storage

    storage = Storage(metro_unit_platform)
    ctx = _promote_mode_run(metro_unit_platform, storage)
    before = ctx.shared.previous_latest.marker
    storage.put_bytes("ml-models", "latest/" + promotion.MARKER_NAME, json_.dumps(before).encode())
    assert _latest(storage)[1] == b"v9"
    assert cleanup(ctx) == []
    assert _latest(storage)[1] == b"v1"


def test_cleanup_undoes_a_promotion_of_the_checks_model_that_did_not_finish(metro_unit_platform, monkeypatch):
    """SRV-5's second promotion dies in the middle of its swap: latest/ holds a mix and the check's journal; the
    run puts the previous model back and drops its own journal and staged copy."""
    from metro_e2e import promotion
    from metro_e2e.conformance.context import cleanup
    from metro_e2e.storage import Storage

    storage = Storage(metro_unit_platform)
    ctx = _promote_mode_run(metro_unit_platform, storage)
    storage.put_bytes("ml-models", "check2/MLmodel", b"flavors: {v: 10}")
    storage.put_bytes("ml-models", "check2/model.pkl", b"v10")
    real_copy = storage.copy

    def dies_after_the_first_copy(bucket, src, dst):
        real_copy(bucket, src, dst)
        if dst.startswith("latest/"):
            raise KeyboardInterrupt("killed mid-swap")

    monkeypatch.setattr(storage, "copy", dies_after_the_first_copy)
    second = {"name": ctx.name, "version": "10", "source_uri": "s3://ml-models/check2/"}
    with pytest.raises(KeyboardInterrupt):
        promotion.copy_to_latest(
            storage, bucket="ml-models", source_prefix="check2/", latest_prefix="latest/", record=second
        )
    monkeypatch.setattr(storage, "copy", real_copy)
    assert promotion.pending(storage, bucket="ml-models", latest_prefix="latest/", marker=_latest(storage)[0])
    assert cleanup(ctx) == []
    marker, body = _latest(storage)
    assert (marker["name"], marker["version"], body) == ("iris-model", "1", b"v1")
    assert promotion.journals(storage, bucket="ml-models", latest_prefix="latest/") == []


def test_cleanup_puts_the_previous_latest_back_only_over_the_checks_own_model(metro_unit_platform):
    from metro_e2e import promotion
    from metro_e2e.conformance.context import cleanup
    from metro_e2e.storage import Storage

    storage = Storage(metro_unit_platform)
    ctx = _promote_mode_run(metro_unit_platform, storage)
    storage.put_bytes("ml-models", "other/MLmodel", b"flavors: {}")
    someone = {"name": "iris-model", "version": "2", "source_uri": "s3://ml-models/other/"}
    promotion.copy_to_latest(
        storage, bucket="ml-models", source_prefix="other/", latest_prefix="latest/", record=someone
    )
    backup = ctx.namespace + "previous-latest/"
    leftovers = cleanup(ctx)
    assert any("someone else promoted" in item and backup in item for item in leftovers), leftovers
    assert promotion.read_marker(storage, bucket="ml-models", latest_prefix="latest/")["version"] == "2"  # left alone
    assert sorted(storage.list_keys("ml-models", backup)) == [backup + "MLmodel", backup + "model.pkl"]  # kept


def test_cleanup_keeps_the_backup_when_it_cannot_put_it_back(metro_unit_platform, monkeypatch):
    from metro_e2e import promotion
    from metro_e2e.conformance.context import cleanup
    from metro_e2e.errors import PromotionError
    from metro_e2e.storage import Storage

    storage = Storage(metro_unit_platform)
    ctx = _promote_mode_run(metro_unit_platform, storage)
    backup = ctx.namespace + "previous-latest/"

    def refuse(*args, **kwargs):
        raise PromotionError("injected: S3 refused the copy")

    monkeypatch.setattr(promotion, "copy_to_latest", refuse)
    leftovers = cleanup(ctx)
    assert any("putting iris-model v1 back failed" in item and backup in item for item in leftovers), leftovers
    assert sorted(storage.list_keys("ml-models", backup)) == [backup + "MLmodel", backup + "model.pkl"]


def test_clause_docs_are_generated_from_the_catalogue():
    assert (ROOT / "docs" / "clauses.md").read_text() == catalogue.clause_docs(), (
        "refresh it with `metro-e2e clauses --format docs > docs/clauses.md`"
    )


@pytest.fixture(scope="module")
def collected_node_ids() -> set[str]:
    """Every test node id of the modules the catalogue names or that hold breakage tests, as pytest collects them
    (no test runs). Collected in this process: a second interpreter would import MLflow and scikit-learn again."""
    files = {t.split("::", 1)[0] for c in CLAUSES for b in c.breakages for t in b.tests}
    files |= {str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "integration").glob("test_breakages_*.py")}
    files.add("tests/integration/test_budgets.py")

    class Collector:
        ids: list[str] = []

        def pytest_collection_finish(self, session: pytest.Session) -> None:
            self.ids = [item.nodeid for item in session.items]

    collector = Collector()
    args = ["--collect-only", "-qq", "-p", "no:cacheprovider", "-n", "0", "-m", "", "--rootdir", str(ROOT)]
    code = pytest.main(
        [*args, "-c", str(ROOT / "pyproject.toml"), *(str(ROOT / f) for f in sorted(files))], plugins=[collector]
    )
    assert code == pytest.ExitCode.OK and collector.ids, f"collection ended {code!r}"
    return set(collector.ids)


def test_every_clause_has_breakages_and_every_named_test_exists(collected_node_ids):
    for clause in CLAUSES:
        assert clause.breakages, f"{clause.id} has no breakage: which misconfiguration must fail it?"
        for breakage in clause.breakages:
            for test in breakage.tests:
                # a test without brackets may be parametrized: any of its cases proves it
                assert test in collected_node_ids or any(n.startswith(test + "[") for n in collected_node_ids), test


def test_every_breakage_test_is_named_in_the_catalogue(collected_node_ids):
    """A breakage test that no clause names would prove nothing the docs say; name it or remove it."""
    named = {t.split("[", 1)[0] for c in CLAUSES for b in c.breakages for t in b.tests}
    breakage_modules = ("tests/integration/test_breakages_", "tests/integration/test_budgets.py")
    orphans = {
        n.split("[", 1)[0]
        for n in collected_node_ids
        if n.startswith(breakage_modules) and n.split("[", 1)[0] not in named
    }
    assert orphans <= {"tests/integration/test_breakages_gateway_s3.py::test_dataset_still_there_after_the_module"}, (
        orphans
    )


def test_a_report_left_by_an_earlier_run_is_never_read_as_this_ones(tmp_path, monkeypatch):
    from metro_e2e.conformance import runner
    from metro_e2e.errors import MetroE2EError

    stale = tmp_path / "report.json"
    stale.write_text(json.dumps({"clauses": [{"id": "GW-1", "verdict": "passed"}]}))
    monkeypatch.setattr(
        pytest, "main", lambda args, plugins=(): pytest.ExitCode.USAGE_ERROR
    )  # a session that wrote nothing
    with pytest.raises(MetroE2EError, match="ended before any clause ran"):
        runner.run(Options(url="http://gw.test", report_json=str(stale)))
    assert not stale.exists()


def test_junit_names_every_clause_once_with_error_for_no_verdict(tmp_path):

    from metro_e2e.conformance.report import complete_junit

    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest" tests="3">'
        '<testcase name="test_gw_1_gateway_answers"><properties><property name="clause" value="GW-1"/>'
        '<property name="verdict" value="passed"/></properties></testcase>'
        '<testcase name="test_s3_1_signed_list_buckets"><properties><property name="clause" value="S3-1"/>'
        '<property name="verdict" value="error"/></properties><failure message="crashed"/></testcase>'
        '<testcase name="test_s3_2_platform_buckets_exist" time="0.1"/>'  # pytest's entry for an interrupted test
        "</testsuite></testsuites>"
    )
    report = {
        "clauses": [
            {
                "id": c.id,
                "verdict": {"GW-1": "passed", "S3-1": "error"}.get(c.id, "error"),
                "detail": "d",
                "level": c.level,
            }
            for c in CLAUSES
        ]
    }
    complete_junit(report, junit)
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    clauses = [next(p.get("value") for p in c.iter("property") if p.get("name") == "clause") for c in cases]
    assert sorted(clauses) == sorted(c.id for c in CLAUSES)  # once each
    assert sum(1 for c in cases if c.find("error") is not None) == len(CLAUSES) - 1 == int(suite.get("errors"))
    assert suite.get("tests") == str(len(CLAUSES)) and suite.get("failures") == "0"


@pytest.mark.parametrize(
    ("advisory", "pytest_code", "exit_code"),
    [("error", 1, 0), ("passed", 1, 1), ("warned", 0, 0)],  # an advisory error fails pytest, not the gate
)
def test_check_exits_by_the_verdicts_unless_something_outside_them_failed(
    tmp_path, monkeypatch, advisory, pytest_code, exit_code
):
    from metro_e2e.conformance import runner

    clauses = [
        {"id": c.id, "level": c.level, "mode": c.mode, "verdict": advisory if c.id == "SRV-6" else "passed"}
        | {"detail": "d", "duration_s": 0.0, "budget_s": 1.0}
        for c in CLAUSES
    ]
    monkeypatch.setattr(pytest, "main", fake_session({"clauses": clauses}, pytest.ExitCode(pytest_code)))
    outcome = runner.run(Options(url="http://gw.test", report_json=str(tmp_path / "r.json")))
    assert outcome.exit_code == exit_code
    assert (outcome.stopped is not None) == (advisory == "passed" and pytest_code == 1)


def test_a_pytest_that_raises_still_ends_the_check_with_its_reports(tmp_path, monkeypatch):
    """pytest itself can raise out of ``pytest.main`` (a hook crashing while it shows an interrupt): the reports the
    session wrote still count, and the check says the session did not complete (exit 1, never 0)."""
    from metro_e2e.conformance import runner

    clauses = [
        {"id": c.id, "level": c.level, "mode": c.mode, "verdict": "passed", "detail": "d", "duration_s": 0.0}
        for c in CLAUSES
    ]
    write = fake_session({"clauses": clauses}, pytest.ExitCode.OK)

    def main(args, plugins=()):
        write(args, plugins)
        raise TypeError("unsupported operand type(s) for -: 'NoneType' and 'int'")

    monkeypatch.setattr(pytest, "main", main)
    junit = tmp_path / "junit.xml"
    outcome = runner.run(Options(url="http://gw.test", report_json=str(tmp_path / "r.json"), junit_xml=str(junit)))
    assert outcome.exit_code == 1
    assert (
        outcome.stopped == "stopped with a pytest internal error (TypeError: unsupported operand type(s) for -: "
        "'NoneType' and 'int')"
    )
    assert junit.exists()


def _passing_clauses(**override) -> list[dict]:
    return [
        {"id": c.id, "level": c.level, "mode": c.mode, "verdict": "passed", "detail": "d", "duration_s": 0.0}
        | override.get(c.id, {})
        for c in CLAUSES
    ]


def test_an_interrupt_pytest_crashed_on_still_exits_130(tmp_path, monkeypatch):
    """pytest saw the interrupt (its hook ran) and then crashed showing it: the check was still interrupted."""
    from metro_e2e.conformance import runner

    write = fake_session({"clauses": _passing_clauses()}, pytest.ExitCode.OK)

    def main(args, plugins=()):
        write(args, plugins)
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            excinfo = pytest.ExceptionInfo.from_current()
        for plugin in plugins:
            plugin.pytest_keyboard_interrupt(excinfo=excinfo)
        raise AssertionError

    monkeypatch.setattr(pytest, "main", main)
    outcome = runner.run(Options(url="http://gw.test", report_json=str(tmp_path / "r.json")))
    assert (outcome.exit_code, outcome.stopped) == (130, "was interrupted")


@pytest.mark.parametrize(
    ("test_text", "interrupted"),
    [("def test_z():\n    raise KeyboardInterrupt\n", True), ("import not_a_module_anywhere\n", False)],
    ids=["interrupt", "collection-error"],
)
def test_the_probe_sees_an_interrupt_before_a_reporter_that_crashes(tmp_path, test_text, interrupted):
    """The probe runs before any other ``pytest_keyboard_interrupt`` implementation (the terminal reporter's is the
    one that crashes), and a collection error (pytest's own ``Interrupted``) is not an interrupt."""
    from metro_e2e.conformance.runner import _SessionProbe

    class Crasher:
        def pytest_keyboard_interrupt(self):
            raise TypeError("unsupported operand type(s) for -: 'NoneType' and 'int'")

    (tmp_path / "test_z.py").write_text(test_text)
    probe = _SessionProbe()
    args = [str(tmp_path / "test_z.py"), "-p", "no:cacheprovider", "-q", "--noconftest", "-p", "no:xdist"]
    assert pytest.main(args, plugins=[probe, Crasher()]) == pytest.ExitCode.INTERRUPTED  # both end that way
    assert probe.interrupted is interrupted


def test_a_second_interrupt_before_the_report_still_leaves_both_reports(tmp_path, monkeypatch, capsys):
    """A second signal while the session cleans up escapes pytest before it writes the report: check writes both
    reports (every clause error, the run interrupted) and exits 130."""
    from metro_e2e import cli

    def main(args, plugins=()):
        raise KeyboardInterrupt

    monkeypatch.setattr(pytest, "main", main)
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    code = cli.main(["check", "--url", "http://gw.test", "--report-json", str(report), "--junit-xml", str(junit)])
    assert code == 130
    clauses = json.loads(report.read_text())["clauses"]
    assert {c["verdict"] for c in clauses} == {"error"}
    assert clauses[0]["detail"] == "not run: the run was interrupted before it wrote its report"
    assert len(ET.parse(junit).getroot().find("testsuite").findall("testcase")) == len(CLAUSES)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "metro-e2e: error: the run was interrupted before it wrote its report"
    )


def test_a_session_that_ended_early_fails_the_check_even_if_every_verdict_it_has_passed(tmp_path, monkeypatch):
    """Only an advisory clause was left unreached (error) and pytest said OK: the check still fails."""
    from metro_e2e.conformance import runner

    unreached = {"verdict": "error", "detail": "not run: the session ended early (pytest did not say why) before it"}
    report = {"clauses": _passing_clauses(**{"SRV-6": unreached}), "stopped": "ended early (pytest did not say why)"}
    monkeypatch.setattr(pytest, "main", fake_session(report, pytest.ExitCode.OK))
    outcome = runner.run(Options(url="http://gw.test", report_json=str(tmp_path / "r.json")))
    assert (outcome.exit_code, outcome.stopped) == (1, "ended early (pytest did not say why)")


def test_check_without_a_url_and_without_nginx_is_one_sentence_not_a_run_of_skips(tmp_path, monkeypatch, capsys):
    """With no URL the check starts the local stack; without nginx it cannot: that is bad input naming both fixes
    (exit 2, the reports written), never a run whose clauses are all skipped (exit 0)."""
    from metro_e2e import cli
    from metro_e2e.errors import StackError
    from metro_e2e.stack import gateway

    def no_nginx():
        raise StackError("the local stack's gateway needs nginx, which is not installed")

    monkeypatch.setattr(gateway, "nginx_binary", no_nginx)
    monkeypatch.delenv("METRO_URL", raising=False)
    monkeypatch.setattr(pytest, "main", lambda *a, **k: pytest.fail("the check must not start"))
    report = tmp_path / "r.json"
    assert cli.main(["check", "--report-json", str(report)]) == 2
    assert {c["verdict"] for c in json.loads(report.read_text())["clauses"]} == {"error"}
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--url" in err[0] and "nginx" in err[0], err


def test_a_clause_pytests_own_selection_left_out_is_an_error_in_check(tmp_path, monkeypatch):
    """``PYTEST_ADDOPTS=-k ...`` reaches the check's pytest: a clause it deselected has no verdict, so ``check``
    reports it ``error`` and fails (it read as ``skipped`` with exit 0 before)."""
    from metro_e2e.conformance import runner
    from metro_e2e.conformance.report import NOT_SELECTED

    left_out = {"verdict": "skipped", "detail": NOT_SELECTED}
    report = {"clauses": _passing_clauses(**{"SRV-6": left_out}), "stopped": None}
    monkeypatch.setattr(pytest, "main", fake_session(report, pytest.ExitCode.OK))
    path = tmp_path / "r.json"
    outcome = runner.run(Options(url="http://gw.test", report_json=str(path)))
    assert (outcome.exit_code, outcome.stopped) == (1, "left clauses out through pytest's own selection")
    written = {c["id"]: c for c in json.loads(path.read_text())["clauses"]}
    assert written["SRV-6"]["verdict"] == "error" and "PYTEST_ADDOPTS" in written["SRV-6"]["detail"]
