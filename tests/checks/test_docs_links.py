"""The README stays a first screen and a map: short, every link it and docs/*.md hold leads somewhere,
and every place the code cites a document's section names a section that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

_FENCE_RE = re.compile(r"^\s*```")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_LINK_RE = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# `README "Heading"`, `docs/api.md "Heading"`, `docs/api.md: Heading)`, `(docs/design.md, Heading)`.
_CITATION_RE = re.compile(
    r'(?P<doc>README|docs/[\w-]+\.md)(?:\s+"(?P<quoted>[^"\n]+)"|[:,]\s+(?P<bare>[A-Z][^).:"\n]*))?'
)


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE_RE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def headings(text: str) -> list[str]:
    return [match.group(2) for line in prose_lines(text) if (match := _HEADING_RE.match(line))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for heading in headings(text):
        base, n = slug(heading), 0
        while (candidate := base if n == 0 else f"{base}-{n}") in found:
            n += 1
        found.add(candidate)
    return found


def broken_links(document: Path) -> list[str]:
    """Relative links of a Markdown document whose file, or heading anchor, does not exist."""
    text = document.read_text()
    broken = []
    for line in prose_lines(text):
        for target in _LINK_RE.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            path = (document.parent / path_part).resolve() if path_part else document
            if not path.exists():
                broken.append(target)
            elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
                broken.append(target)
    return broken


def bad_citations(text: str) -> list[str]:
    """Citations `<document> "<heading>"` whose document is missing or has no heading starting so."""
    bad = []
    for match in _CITATION_RE.finditer(text.replace('\\"', '"')):
        path = ROOT / ("README.md" if match["doc"] == "README" else match["doc"])
        cited = (match["quoted"] or match["bare"] or "").strip()
        if not path.is_file():
            bad.append(match.group(0))
        elif cited and not any(h.replace("`", "").startswith(cited) for h in headings(path.read_text())):
            bad.append(match.group(0))
    return bad


def citing_files() -> list[Path]:
    sources = [p for p in sorted((ROOT / "inventory").rglob("*.py")) if "vendor" not in p.parts]
    return [*sources, ROOT / "gunicorn.conf.py", ROOT / "wsgi.py", ROOT / "docs" / "grafana-dashboard.json"]


# -- the checks check ------------------------------------------------------------------------

def test_the_helpers_find_missing_files_anchors_and_sections(tmp_path):
    (tmp_path / "there.md").write_text("# Title\n\n## Health: what `/health/detailed` says\n\n```\n## not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#health-what-healthdetailed-says) [web](https://example.com/x)\n"
        "[gone](missing.md) [no anchor](there.md#not-a-heading) [self](#nowhere)\n"
    )
    assert broken_links(page) == ["missing.md", "there.md#not-a-heading", "#nowhere"]
    assert bad_citations('(README "No such heading") (docs/nothing.md) (docs/api.md, Quotes and valuations)') == [
        'README "No such heading"',
        "docs/nothing.md",
    ]


# -- the README --------------------------------------------------------------------------------

def test_readme_is_a_first_screen_and_a_map():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for command in ("make run", "make test", "make demo"):
        assert command in text, command
    linked = {target.partition("#")[0] for target in _LINK_RE.findall(text)}
    documents = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert documents <= linked, sorted(documents - linked)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(document):
    assert broken_links(document) == []


def test_code_cites_only_sections_that_exist():
    bad = {path.relative_to(ROOT).as_posix(): found for path in citing_files()
           if (found := bad_citations(path.read_text()))}
    assert not bad, bad
