"""The HTML report in a real browser: Debian's ``chromium``, headless, driven by Playwright, offline.

``render(path)`` loads the page from a ``file://`` URL with the network cut off and every request outside the file
refused, and reads back what the browser shows: each clause row's verdict and its computed colour, the counts, the
chart's bars, what the page said on the console (errors and uncaught exceptions) and every request it tried.
Without chromium (or Playwright) the caller skips with the reason; under ``CI=true`` that is a failure instead.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM_INSTALL = "apt-get install -y chromium"
READ_BACK = """() => ({
  rows: Array.from(document.querySelectorAll('tr[data-clause]')).map(r => {
    const cell = r.querySelector('td.verdict');
    return {id: r.dataset.clause, verdict: cell.firstChild.textContent.trim(), text: r.innerText,
            colour: getComputedStyle(cell).backgroundColor, visible: !r.hidden && r.offsetHeight > 0};
  }),
  bars: Array.from(document.querySelectorAll('#durations rect[data-clause]')).map(b => b.dataset.clause),
  counts: Array.from(document.querySelectorAll('#counts [data-count]')).map(s => s.innerText),
  meta: Object.fromEntries(Array.from(document.querySelectorAll('#meta tr')).map(r => [r.dataset.field,
        r.cells[1].innerText])),
})"""


@dataclass
class Rendered:
    rows: list[dict]
    bars: list[str]
    counts: list[str]
    meta: dict[str, str]
    problems: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, refused requests
    visible_after_filter: dict[str, list[str]] = field(default_factory=dict)  # verdict button -> rows shown

    def verdicts(self) -> dict[str, str]:
        return {r["id"]: r["verdict"] for r in self.rows}


def chromium() -> str:
    """The chromium binary; skips (fails under CI=true) when it or Playwright is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = None if found else f"no chromium to render the HTML report in ({CHROMIUM_INSTALL})"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = missing or "Playwright is not installed (pip install -e '.[test]')"
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must render the HTML report: {missing}")
        pytest.skip(missing)
    return found


def render(path: str | Path, *, click: tuple[str, ...] = ()) -> Rendered:
    """Load ``path`` in headless chromium, offline, and read the page back; ``click``: filter buttons to press (by
    their ``data-show``), recording which rows each leaves visible."""
    from playwright.sync_api import sync_playwright

    url = Path(path).resolve().as_uri()
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"], timeout=60_000)
        try:
            context = browser.new_context(offline=True, java_script_enabled=True)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))

            def only_the_file(route):
                if route.request.url == url:
                    route.continue_()
                else:
                    problems.append(f"request refused: {route.request.url}")
                    route.abort()

            page.route("**/*", only_the_file)
            page.goto(url, wait_until="load")
            seen = page.evaluate(READ_BACK)
            shown: dict[str, list[str]] = {}
            for wanted in click:
                page.click(f'.filter button[data-show="{wanted}"]')
                shown[wanted] = [r["id"] for r in page.evaluate(READ_BACK)["rows"] if r["visible"]]
        finally:
            browser.close()
    return Rendered(seen["rows"], seen["bars"], seen["counts"], seen["meta"], problems, shown)


def rgb(hex_colour: str) -> str:
    """``#1a7f37`` as a browser's computed style writes it: ``rgb(26, 127, 55)``."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"
