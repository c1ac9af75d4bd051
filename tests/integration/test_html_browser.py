"""The HTML report in a real browser (headless Debian chromium, offline): it renders without a console error or a
network request, shows every clause with the report's verdict in its colour, explains blocked clauses, shows the
evidence, filters by verdict, and charts every clause's duration; and the read-back catches a page that breaks.

The page from a real ``check`` run is rendered in ``test_results_check.py``.
"""

from __future__ import annotations

import pytest

from metro_e2e.conformance import compare, html

from ..reports import a_report
from .browser import chromium, render, rgb

pytestmark = pytest.mark.usefixtures("browser_available")


@pytest.fixture(scope="module")
def browser_available():
    chromium()


def every_verdict() -> dict:
    """A report with each verdict, a known failure against a baseline and a stopped-free run."""
    report = a_report(MLF_3="failed", MLF_4="blocked", MLF_5="blocked", S3_5="warned", KFP_1="error", SRV_6="skipped")
    report["clauses"][[c["id"] for c in report["clauses"]].index("MLF-4")]["detail"] = "depends on MLF-3, which failed"
    report["baseline"] = compare.gate(report, a_report(MLF_3="failed"), strict=False).summary("old.tar.gz")
    return report


EVIDENCE = {
    "MLF-3": [
        {
            "what": "GET /mlflow/version",
            "method": "GET",
            "url": "http://gw/mlflow/version",
            "status": 200,
            "body_excerpt": "1.30.0 <b>not bold</b>",
        }
    ]
}


def test_the_page_renders_offline_with_every_verdict_in_its_colour(tmp_path):
    report = every_verdict()
    path = html.write(html.page(report, EVIDENCE), tmp_path / "run.html")
    seen = render(path, click=("failed", "all"))
    assert seen.problems == [], "no console error, no uncaught exception, no request beyond the file"
    assert seen.verdicts() == {c["id"]: c["verdict"] for c in report["clauses"]}, "every clause, its verdict"
    for row in seen.rows:
        assert row["colour"] == rgb(html.COLOURS[row["verdict"]][0]), row
    by_id = {r["id"]: r for r in seen.rows}
    assert "blocked because its dependencies did not pass: MLF-3 failed\n" in by_id["MLF-4"]["text"] + "\n"
    assert "S3-2" not in by_id["MLF-4"]["text"], "only the dependencies that did not pass"
    assert "(known failure)" in by_id["MLF-3"]["text"] and "(known failure)" not in by_id["MLF-4"]["text"]
    assert "evidence" in by_id["MLF-3"]["text"]
    assert seen.bars == [c["id"] for c in report["clauses"]], "one bar per clause in the duration chart"
    assert seen.counts == ["17 passed", "1 failed", "2 blocked", "1 skipped", "1 warned", "1 error"]
    assert seen.visible_after_filter == {"failed": ["MLF-3"], "all": [c["id"] for c in report["clauses"]]}
    assert seen.meta["target"] == "http://gw.example" and seen.meta["mode"] == "default"


def test_the_read_back_catches_a_wrong_verdict(tmp_path):
    report = every_verdict()
    page = html.page(report).replace('class="verdict v-failed">failed', 'class="verdict v-passed">passed', 1)
    seen = render(html.write(page, tmp_path / "lying.html"))
    assert seen.verdicts()["MLF-3"] == "passed" != report["clauses"][8]["verdict"], "the DOM shows what it shows"
    assert seen.verdicts() != {c["id"]: c["verdict"] for c in report["clauses"]}


@pytest.mark.parametrize(
    ("breakage", "says"),
    [
        (
            lambda p: p.replace(
                "document.querySelectorAll('.filter", "undefinedFunction();document.querySelectorAll('.filter"
            ),
            "uncaught: undefinedFunction is not defined",
        ),
        (
            lambda p: p.replace("</body>", '<img src="https://cdn.example/logo.png"></body>'),
            "Loading the image 'https://cdn.example/logo.png' violates the following Content Security Policy",
        ),
        (
            lambda p: p.replace(html.CSP, "default-src *").replace(
                "</body>", '<img src="https://cdn.example/a.png"></body>'
            ),
            "request refused: https://cdn.example/a.png",
        ),
        (lambda p: p.replace("</body>", "<script>console.error('broken')</script></body>"), "console error: broken"),
    ],
    ids=["script-error", "fetch-refused-by-the-csp", "fetch-without-the-csp", "console-error"],
)
def test_the_browser_catches_a_page_that_breaks(tmp_path, breakage, says):
    path = html.write(breakage(html.page(every_verdict())), tmp_path / "broken.html")
    problems = render(path).problems
    assert any(says in p for p in problems), problems
