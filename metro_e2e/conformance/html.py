"""The HTML report: one self-contained page a person reads (``check --html PATH``, ``metro-e2e report RUN --html``).

Everything is in the file: styles, a few lines of script (filter the table by verdict), and the duration chart as
inline SVG. Its Content-Security-Policy allows nothing from the network, so opening it fetches nothing. It shows
the target, mode, versions, counts, the clause table with verdict colours, why each blocked clause was blocked
(its dependencies' verdicts), each clause's detail and evidence excerpt, and the baseline's known failures and
regressions when the run had one. Every value is escaped; the run's secrets were masked before it got here.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from metro_e2e.conformance.catalogue import BY_ID
from metro_e2e.conformance.engine import VERDICTS

COLOURS = {  # verdict -> (background, text): the table's cells, the chart's bars and the counts
    "passed": ("#1a7f37", "#ffffff"),
    "failed": ("#cf222e", "#ffffff"),
    "blocked": ("#8250df", "#ffffff"),
    "skipped": ("#d0d7de", "#24292f"),
    "warned": ("#bf8700", "#ffffff"),
    "error": ("#57606a", "#ffffff"),
}
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
EVIDENCE_SHOWN = 3  # records per clause on the page (the bundle keeps them all)

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#24292f}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse} td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
.meta td:first-child{font-weight:600} .verdict{font-weight:600;white-space:nowrap}
.counts span{display:inline-block;margin-right:8px;padding:2px 8px;border-radius:10px}
pre{white-space:pre-wrap;margin:4px 0;font-size:12px;max-width:900px} details{margin-top:4px}
.filter button{margin-right:4px} .known{font-size:12px;font-weight:400}
""" + "".join(f".v-{v}{{background:{bg};color:{fg}}}" for v, (bg, fg) in COLOURS.items())

_SCRIPT = """
document.querySelectorAll('.filter button').forEach(function (button) {
  button.addEventListener('click', function () {
    var wanted = button.getAttribute('data-show');
    document.querySelectorAll('tr[data-clause]').forEach(function (row) {
      row.hidden = wanted !== 'all' && row.getAttribute('data-verdict') !== wanted;
    });
  });
});
"""


def _e(value) -> str:
    return escape(str(value), quote=True)


def page(report: dict, evidence: dict[str, list[dict]] | None = None, *, evidence_note: str = "") -> str:
    """The page for ``report``; ``evidence`` maps a clause id to its records (a bundle's ``evidence/``)."""
    evidence = evidence or {}
    clauses = report["clauses"]
    verdict_of = {c["id"]: c["verdict"] for c in clauses}
    counts = {v: sum(1 for c in clauses if c["verdict"] == v) for v in VERDICTS}
    baseline = report.get("baseline") or {}
    known = set(baseline.get("known_failures", ()))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>metro-e2e: {_e(report['target'])} ({_e(report['run_id'])})</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>metro-e2e conformance report: {_e(report['target'])}</h1>",
        _meta(report),
        '<p class="counts" id="counts">'
        + "".join(f'<span class="v-{v}" data-count="{v}">{n} {v}</span>' for v, n in counts.items() if n)
        + "</p>",
    ]
    if report.get("stopped"):
        parts.append(f"<p><strong>The run {_e(report['stopped'])}</strong>: clauses it did not reach are error.</p>")
    if baseline:
        parts.append(_baseline(baseline))
    parts.append('<h2>Clauses</h2><p class="filter">Show: <button data-show="all">all</button>')
    parts += [f'<button data-show="{v}">{v}</button>' for v, n in counts.items() if n]
    parts.append("</p>")
    parts.append(
        '<table id="clauses"><thead><tr><th>clause</th><th>level</th><th>mode</th><th>verdict</th><th>seconds</th>'
        "<th>budget s</th><th>detail and evidence</th></tr></thead><tbody>"
    )
    for c in clauses:
        parts.append(_row(c, verdict_of, evidence.get(c["id"], []), c["id"] in known))
    parts.append("</tbody></table>")
    if evidence_note:
        parts.append(f"<p>{_e(evidence_note)}</p>")
    parts.append("<h2>Clause durations</h2>" + _chart(clauses))
    leftovers = report["leftovers"]
    parts.append(
        "<h2>Leftovers</h2><p>"
        + (_e("; ".join(leftovers)) if leftovers else "none (the run's namespace was cleaned up)")
        + "</p>"
    )
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def write(text: str, path: str | Path) -> Path:
    """Write the page ``text`` at ``path`` (beside it first, then renamed: never half a page)."""
    from metro_e2e.conformance.report import write_atomically

    return write_atomically(path, lambda p: p.write_text(text, encoding="utf-8"), what="the HTML page", option="--html")


def _meta(report: dict) -> str:
    versions = report["versions"]
    rows = [
        ("target", report["target"]),
        ("mode", report["mode"]),
        ("started", report["started_at"]),
        ("run id / namespace", f"{report['run_id']} / {report['namespace']}"),
        ("S3 backend", report["s3_backend"] or "the platform's (remote target)"),
        ("MLflow server / client", f"{versions['mlflow_server'] or '-'} / {versions['mlflow_client'] or '-'}"),
        ("KFP backend / SDK", f"{versions['kfp_backend'] or '-'} / {versions['kfp_sdk'] or '-'}"),
        ("suite / catalogue", f"{report['suite_version']} / {report['catalogue_version']}"),
    ]
    if report["s3_backend"] == "moto":
        rows.append(("note", "the local stack's S3 is moto's S3 server behind the gateway, not MinIO"))
    return (
        '<table class="meta" id="meta">'
        + "".join(f'<tr data-field="{_e(k)}"><td>{_e(k)}</td><td>{_e(v)}</td></tr>' for k, v in rows)
        + "</table>"
    )


def _baseline(baseline: dict) -> str:
    known = ", ".join(baseline["known_failures"]) or "none"
    regressions = ", ".join(baseline["regressions"]) or "none"
    return (
        f'<h2>Against the baseline</h2><p id="baseline">baseline {_e(baseline["source"])} (run {_e(baseline["run_id"])}, '
        f"{_e(baseline['started_at'])}): known failures (they do not fail the run): {_e(known)}; "
        f"regressions: {_e(regressions)}</p>"
    )


def _row(c: dict, verdict_of: dict[str, str], records: list[dict], known: bool) -> str:
    clause = BY_ID.get(c["id"])
    detail = f"<div>{_e(c['detail'])}</div>"
    if c["verdict"] == "blocked" and clause is not None:
        blocking = [d for d in clause.depends_on if verdict_of.get(d) != "passed"]
        reasons = "; ".join(f"{d} {verdict_of.get(d, 'not in this report')}" for d in blocking)
        detail += f'<div class="because">blocked because its dependencies did not pass: {_e(reasons)}</div>'
    if records:
        shown = "".join(f"<pre>{_e(_record_text(r))}</pre>" for r in records[:EVIDENCE_SHOWN])
        more = f" (first {EVIDENCE_SHOWN} of {len(records)})" if len(records) > EVIDENCE_SHOWN else ""
        detail += f"<details><summary>evidence{more}</summary>{shown}</details>"
    budget = "" if c["budget_s"] is None else f"{c['budget_s']:g}"
    mark = ' <span class="known">(known failure)</span>' if known else ""
    return (
        f'<tr data-clause="{_e(c["id"])}" data-verdict="{_e(c["verdict"])}"><td>{_e(c["id"])}</td>'
        f"<td>{_e(c['level'])}</td><td>{_e(c['mode'])}</td>"
        f'<td class="verdict v-{_e(c["verdict"])}">{_e(c["verdict"])}{mark}</td>'
        f"<td>{c['duration_s']:.2f}</td><td>{budget}</td><td>{detail}</td></tr>"
    )


def _record_text(record: dict) -> str:
    head = record.get("what", "")
    if "status" in record:
        head += f"\n{record.get('method', '')} {record.get('url', '')} -> HTTP {record['status']}"
    if record.get("note"):
        head += f"\n{record['note']}"
    if record.get("body_excerpt"):
        head += f"\n{record['body_excerpt'][:500]}"
    return head


def _chart(clauses: list[dict]) -> str:
    """A horizontal bar per clause: its seconds, coloured by its verdict."""
    longest = max([c["duration_s"] for c in clauses] + [0.001])
    width, label, bar_h = 640, 70, 14
    height = len(clauses) * (bar_h + 4) + 24
    out = [
        f'<svg id="durations" xmlns="http://www.w3.org/2000/svg" width="{width + label + 80}" height="{height}" '
        'role="img" aria-label="clause durations in seconds">'
    ]
    for n, c in enumerate(clauses):
        y = n * (bar_h + 4)
        w = max(1.0, c["duration_s"] / longest * width)
        bg = COLOURS.get(c["verdict"], ("#000000", ""))[0]
        out.append(f'<text x="0" y="{y + bar_h - 2}" font-size="11">{_e(c["id"])}</text>')
        out.append(
            f'<rect data-clause="{_e(c["id"])}" x="{label}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{bg}">'
            f"<title>{_e(c['id'])}: {c['duration_s']:.2f} s ({_e(c['verdict'])})</title></rect>"
        )
        out.append(f'<text x="{label + w + 4:.1f}" y="{y + bar_h - 2}" font-size="11">{c["duration_s"]:.2f} s</text>')
    out.append(f'<text x="{label}" y="{height - 4}" font-size="11">0 s to {longest:.2f} s</text></svg>')
    return "".join(out)
