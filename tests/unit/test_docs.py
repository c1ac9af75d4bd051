"""The documents stay true: generated tables equal their generators, the README stays short, every relative link
(and heading anchor) resolves, and the architecture page names every module of the package.

After changing a declaration (a clause, a breakage, a ``check`` option, a setting), rewrite every generated block
and ``docs/clauses.md`` with ``.venv/bin/python tests/unit/test_docs.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from metro_e2e import config
from metro_e2e.conformance import catalogue, options

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "`.venv/bin/python tests/unit/test_docs.py`"
README_MAX_LINES = 200

# block name -> the page holding it between <!-- name:start --> and <!-- name:end -->, and its generator
GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "clauses": ("docs/conformance.md", catalogue.markdown_table),
    "options": ("docs/conformance.md", options.markdown_table),
    "configuration": ("docs/configuration.md", config.markdown_table),
}
CLAUSE_DOCS = "docs/clauses.md"  # generated whole by catalogue.clause_docs (test_conformance.py compares it)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"


def _split(text: str, name: str) -> tuple[str, str, str]:
    """``text`` as (before the block, the block, after it); each marker must appear exactly once."""
    start, end = _markers(name)
    assert text.count(start) == 1 and text.count(end) == 1, f"expected one {start.strip()} and one {end}"
    before, rest = text.split(start, 1)
    block, after = rest.split(end, 1)
    return before + start, block, end + after


def _expected(generate: Callable[[], str]) -> str:
    return generate().rstrip("\n") + "\n"


def regenerate() -> list[str]:
    """Rewrite every generated block and ``docs/clauses.md`` from the declarations; the pages that changed."""
    changed = []
    for name, (page, generate) in GENERATED.items():
        path = ROOT / page
        text = path.read_text()
        before, _, after = _split(text, name)
        new = before + _expected(generate) + after
        if new != text:
            path.write_text(new)
            changed.append(f"{page} ({name})")
    clause_docs = ROOT / CLAUSE_DOCS
    if clause_docs.read_text() != catalogue.clause_docs():
        clause_docs.write_text(catalogue.clause_docs())
        changed.append(CLAUSE_DOCS)
    data = ROOT / catalogue.CATALOGUE_DATA
    if data.read_text() != _catalogue_yaml():
        data.write_text(_catalogue_yaml())
        changed.append(catalogue.CATALOGUE_DATA)
    return changed


def _catalogue_yaml() -> str:
    import yaml

    return yaml.safe_dump(catalogue.catalogue(), sort_keys=False)


def test_the_committed_catalogue_is_the_catalogue(capsys):
    """docs/clauses.yaml is what `metro-e2e clauses --format yaml` prints, as Kubernetes keeps its conformance
    catalogue: a change to a clause shows in the diff, with its new catalogue version (set the clause's
    changed_in to the version that changes it)."""
    import json

    import yaml

    from metro_e2e.cli import main

    committed = (ROOT / catalogue.CATALOGUE_DATA).read_text()
    assert committed == _catalogue_yaml(), f"{catalogue.CATALOGUE_DATA} is out of date: refresh with {REGENERATE}"
    assert main(["clauses", "--format", "yaml"]) == 0
    assert capsys.readouterr().out == committed
    assert main(["clauses", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == yaml.safe_load(committed)
    data = yaml.safe_load(committed)
    assert [c["id"] for c in data["clauses"]] == [c.id for c in catalogue.CLAUSES]
    assert {c["level"] for c in data["clauses"]} == {"MUST", "SHOULD"}
    for clause in data["clauses"]:
        path, function = clause["check"].split("::")
        assert f"def {function}(" in (ROOT / path).read_text(), clause["check"]


def test_the_catalogue_version_changes_with_any_clause(monkeypatch):
    import dataclasses

    before = catalogue.catalogue_version()
    changed = [dataclasses.replace(catalogue.CLAUSES[0], promise="something else")] + list(catalogue.CLAUSES[1:])
    monkeypatch.setattr(catalogue, "CLAUSES", tuple(changed))
    assert catalogue.catalogue_version() != before


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_docs_block_equals_its_generator(name):
    page, generate = GENERATED[name]
    _, block, _ = _split((ROOT / page).read_text(), name)
    assert block == _expected(generate), f"the {name} table in {page} is stale: refresh it with {REGENERATE}"


def test_readme_is_at_most_200_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move the detail to a page in docs/"


# -- links -------------------------------------------------------------------------------------------------------------
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]\n]*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and code spans, where brackets and parentheses are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return "".join(c for c in text if c.isalnum() or c in " -_").replace(" ", "-")


def _anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in FENCE.sub("", text).splitlines():
        if match := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            slug = _slug(match.group(1))
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _relative_links(document: Path) -> list[str]:
    targets = LINK.findall(_prose(document.read_text()))
    return [t for t in targets if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", t)]  # http:, https:, mailto: ...


def test_the_documents_exist():
    assert {"README.md", "CONTRIBUTING.md"} <= {d.name for d in DOCUMENTS}
    assert (ROOT / CLAUSE_DOCS) in DOCUMENTS


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_a_file_and_heading_that_exist(document):
    broken = []
    for target in _relative_links(document):
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved.read_text()):
            broken.append(f"{target}: {resolved.relative_to(ROOT)} has no heading with the anchor #{anchor}")
    assert not broken, f"{document.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_anchors():
    """Guards the checker itself: a link inside code is no link, and anchors follow GitHub's rules."""
    text = "See [a](docs/a.md#x) and `[b](nowhere.md)`.\n```\n[c](nowhere.md)\n```\n[d](https://example.com)"
    assert LINK.findall(_prose(text)) == ["docs/a.md#x", "https://example.com"]
    assert _slug("With Docker: docker-compose.yml") == "with-docker-docker-composeyml"
    assert _slug("The exit code of `metro-e2e check`") == "the-exit-code-of-metro-e2e-check"
    assert _anchors("# A\n## A\n```\n# B\n```\n") == {"a", "a-1"}


def test_readme_links_every_docs_page():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _relative_links(ROOT / "README.md")}
    orphans = [p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").iterdir() if p.resolve() not in linked]
    assert not orphans, f"README.md does not link {orphans}"


def test_architecture_names_every_module_of_the_package():
    text = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "metro_e2e").rglob("*.py"))
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"docs/architecture.md does not describe {missing}"


if __name__ == "__main__":
    changed = regenerate()
    print("\n".join(f"rewrote {page}" for page in changed) or "every generated block is up to date")


def _documented_commands() -> list[tuple[str, list[str]]]:
    """Every ``metro-e2e`` command line in the README and the sample CI workflow, as argv (shell continuations
    joined; what follows ``#``, ``|``, ``>``, ``&&`` or ``||`` and shell variables left out)."""
    import shlex

    found = []
    for name in ("README.md", "docs/ci-gate.yml"):
        text = (ROOT / name).read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if ".venv/bin/metro-e2e " not in line:
                continue
            before, after = line.split(".venv/bin/metro-e2e ", 1)
            if before.endswith("`"):  # inline in prose: up to the closing backtick
                after = after.split("`", 1)[0]
            words = shlex.split(after, comments=True)
            argv = []
            for word in words:
                if word in ("|", ">", "&&", "||", ";", "&") or word.startswith(("|", ">")):
                    break
                if not word.startswith("$"):
                    argv.append(word)
            found.append((name, argv))
    return found


def test_every_documented_command_is_one_the_cli_takes(capsys):
    """A command the README or docs/ci-gate.yml shows must parse: an option renamed or removed fails here."""
    from metro_e2e.cli import build_parser

    commands = _documented_commands()
    assert {argv[0] for _, argv in commands} >= {"check", "report", "diff", "clauses", "k8s", "pipeline"}
    for name, argv in commands:
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            raise AssertionError(f"{name}: metro-e2e {' '.join(argv)}: {capsys.readouterr().err}") from None
