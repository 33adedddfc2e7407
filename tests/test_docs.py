"""The repository stands alone: it cites only documents inside it, and those exist."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = [
    p
    for pattern in ("jaxmail/**/*.py", "tests/**/*.py", "benchmarks/**/*.py", "notebooks/*.ipynb")
    for p in ROOT.glob(pattern)
] + [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]


def test_no_citation_of_files_outside_the_repository():
    outside = re.compile(r"\b(PAPER|DESIGN|STYLE)\.md\b|\.\./shared")
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in SOURCES
        if p.exists() and p != pathlib.Path(__file__).resolve()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert not hits, hits


def test_cited_docs_and_sections_exist():
    sections = {}
    for doc in (ROOT / "docs").glob("*.md"):
        numbers = re.findall(r"^##+ (\d+)\.", doc.read_text(encoding="utf-8"), flags=re.M)
        sections[f"docs/{doc.name}"] = set(numbers)
    cited = re.compile(r"(docs/[a-z_]+\.md)(?: §(\d+))?")
    missing = []
    for p in SOURCES:
        if not p.exists():
            continue
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            for doc, section in cited.findall(line):
                if doc not in sections or (section and section not in sections[doc]):
                    missing.append(f"{p.relative_to(ROOT)}:{n}: {doc} §{section}")
    assert sections and not missing, missing
