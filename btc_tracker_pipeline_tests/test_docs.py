"""The documentation holds together: what the code cites exists, links resolve, the README
stays short, and nothing points outside the repository.

* Every ``docs/<name>.md`` the Python code cites exists, with every section it cites
  (``docs/apis.md §1.6``, ``§0, §1.2``, ``§1.4–1.6``, ``§2-3``; a quoted name such as
  ``docs/dagster.md, "Pools"`` is a heading). A bare ``§N`` is looked up in the documents
  its file cites (in every document when the file cites none).
* Every other ``<name>.md`` the code cites is a file of the repository.
* Every relative link in the repository's Markdown files resolves to a file in it.
* README.md is at most ``README_MAX_LINES`` lines.
* No file mentions the folder beside the repository (the project must stand alone).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CODE_DIRS = ("btc_tracker_pipeline", "btc_tracker_pipeline_tests", "bench")
README_MAX_LINES = 250

# Spelled in pieces so that this file does not mention them itself.
OUTSIDE = ("..".join(["", "/shared"]), "/" + "shared" + "/")

# Folders that are not the project's own files: environments, caches, run-time data and
# what Dagster and the tests leave behind (see .gitignore).
SKIP_ANYWHERE = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules"}
SKIP_AT_ROOT = {"data", "artifacts", "storage", "logs", "history", "schedules", ".logs_queue"}
SKIP_AT_ROOT |= {".telemetry", ".nux"}

SECTION = r"\d+(?:\.\d+)*"
# docs/<name>.md, then any run of section references: "§1.2", ", §3", " and §5",
# "§1.4–1.6", "§2-3" (a range's end may drop the §).
DOC_CITATION = re.compile(
    rf"docs/(?P<doc>[A-Za-z0-9_-]+)\.md"
    rf"(?:,\s*\"(?P<name>[^\"]+)\""
    rf"|(?P<refs>(?:\s*(?:,|and|/)?\s*§{SECTION}(?:\s*[-–]\s*§?{SECTION})?)*))"
)
SECTION_REF = re.compile(rf"§(?P<first>{SECTION})(?:\s*[-–]\s*§?(?P<last>{SECTION}))?")
# Any other Markdown file named in the code ("bench/results/soak.md", "soak.md"),
# but not attribute calls like MetadataValue.md(...) or templates like <name>.md.
MD_FILE = re.compile(r"(?<![\w./<{-])(?P<path>(?:[\w-]+/)*[\w-]+\.md)\b(?!\s*\()")
HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*\s*$", re.MULTILINE)
HEADING_SECTION = re.compile(rf"^§(?P<section>{SECTION})(?![\d.])")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _walk(top: Path) -> Iterator[Path]:
    for path in sorted(top.iterdir()):
        if path.name in SKIP_ANYWHERE or path.name.endswith(".egg-info"):
            continue
        if top == ROOT and (path.name in SKIP_AT_ROOT or path.name.startswith("tmp")):
            continue
        if path.is_dir():
            yield from _walk(path)
        elif path.is_file():
            yield path


def project_files() -> list[Path]:
    """Every file of the project, outside environments, caches and run-time data."""
    return list(_walk(ROOT))


def python_files() -> list[Path]:
    """The code that may cite documents (not this file: its examples are not citations)."""
    return [
        p
        for p in project_files()
        if p.suffix == ".py" and p.parts[len(ROOT.parts)] in CODE_DIRS and p != Path(__file__)
    ]


def markdown_files() -> list[Path]:
    return [p for p in project_files() if p.suffix == ".md"]


def flat(text: str) -> str:
    """Python source with each line break (and a comment's ``#``) turned into spaces of
    the same length, so a citation split over two lines reads as one and every index
    still points at the same character."""
    return re.sub(r"\n[ \t]*(?:#[ \t]?)?", lambda m: " " * len(m.group()), text)


def line_of(path: Path, index: int) -> str:
    """``file:line`` of a character of ``path``."""
    text = path.read_text(encoding="utf-8")
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, index) + 1}"


def expand(first: str, last: str | None) -> list[str]:
    """``1.4``–``1.6`` → 1.4, 1.5, 1.6; ``2``–``3`` → 2, 3; a single section → itself."""
    if last is None:
        return [first]
    head, _, low = first.rpartition(".")
    last_head, _, high = last.rpartition(".")
    if last_head and last_head != head:
        raise ValueError(f"cannot expand the range §{first}–{last}")
    prefix = f"{head}." if head else ""
    return [f"{prefix}{n}" for n in range(int(low), int(high) + 1)]


def headings(doc: Path) -> list[str]:
    return [m["text"] for m in HEADING.finditer(FENCE.sub("", doc.read_text(encoding="utf-8")))]


def sections(doc: Path) -> set[str]:
    """The section numbers of a document: headings that start with ``§N``."""
    found = set()
    for text in headings(doc):
        match = HEADING_SECTION.match(text)
        if match:
            found.add(match["section"])
    return found


def citations() -> list[tuple[str, str, str | None, str]]:
    """(doc, section or "", heading name or None, where) for every citation in the code;
    bare §N references are listed with doc = "" and the docs their file cites."""
    found: list[tuple[str, str, str | None, str]] = []
    for path in python_files():
        text = flat(path.read_text(encoding="utf-8"))
        cited_docs: list[str] = []
        spans: list[tuple[int, int]] = []
        for match in DOC_CITATION.finditer(text):
            doc = match["doc"]
            cited_docs.append(doc)
            spans.append(match.span())
            at = line_of(path, match.start())
            found.append((doc, "", None, at))
            for ref in SECTION_REF.finditer(match["refs"] or ""):
                for section in expand(ref["first"], ref["last"]):
                    found.append((doc, section, None, at))
            if match["name"]:
                found.append((doc, "", match["name"], at))
        masked = text
        for start, end in spans:
            masked = masked[:start] + " " * (end - start) + masked[end:]
        for ref in SECTION_REF.finditer(masked):
            for section in expand(ref["first"], ref["last"]):
                docs = ",".join(sorted(set(cited_docs)))
                found.append(("", section, docs, line_of(path, ref.start())))
    return found


def test_the_code_cites_documents_by_section() -> None:
    """Sanity: the scan finds the citations (so the checks below are not vacuous)."""
    docs = {doc for doc, _, _, _ in citations() if doc}
    assert {"apis", "dagster", "modeling"} <= docs


def test_every_cited_document_and_section_exists() -> None:
    missing = []
    known = {p.stem: p for p in DOCS.glob("*.md")}
    for doc, section, name, at in citations():
        if not doc:
            continue
        if doc not in known:
            missing.append(f"{at}: docs/{doc}.md does not exist")
        elif section and section not in sections(known[doc]):
            missing.append(f"{at}: docs/{doc}.md has no heading §{section}")
        elif name and not any(name.lower() in h.lower() for h in headings(known[doc])):
            missing.append(f'{at}: docs/{doc}.md has no heading "{name}"')
    assert not missing, "\n".join(sorted(set(missing)))


def test_every_bare_section_exists_in_a_document_its_file_cites() -> None:
    missing = []
    known = {p.stem: p for p in DOCS.glob("*.md")}
    for doc, section, cited, at in citations():
        if doc:
            continue
        candidates = [known[d] for d in (cited or "").split(",") if d in known] or list(
            known.values()
        )
        if not any(section in sections(d) for d in candidates):
            names = ", ".join(f"docs/{d.name}" for d in candidates)
            missing.append(f"{at}: §{section} is in none of {names}")
    assert not missing, "\n".join(sorted(set(missing)))


def test_every_markdown_file_the_code_names_exists() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in project_files()}
    missing = []
    for path in python_files():
        text = path.read_text(encoding="utf-8")
        for match in MD_FILE.finditer(text):
            name = match["path"]
            if DOC_CITATION.match(text, match.start()):
                continue  # docs/<name>.md: checked with its sections above
            if not any(f == name or f.endswith("/" + name) for f in files):
                missing.append(f"{line_of(path, match.start())}: {name} is not in the repository")
    assert not missing, "\n".join(missing)


def test_every_relative_link_resolves() -> None:
    broken = []
    for md in markdown_files():
        text = INLINE_CODE.sub("", FENCE.sub("", md.read_text(encoding="utf-8")))
        for match in LINK.finditer(text):
            target = match["target"].strip("<>")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # http(s), mailto, in-page anchors
            file_part = target.split("#", 1)[0]
            resolved = (md.parent / file_part).resolve()
            if not resolved.exists() or ROOT not in (resolved, *resolved.parents):
                broken.append(f"{md.relative_to(ROOT)}: ({target}) does not resolve")
    assert not broken, "\n".join(broken)


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_nothing_points_outside_the_repository() -> None:
    offenders = []
    for path in project_files():
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images)
        text = data.decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if any(needle in line for needle in OUTSIDE):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "\n".join(offenders)
