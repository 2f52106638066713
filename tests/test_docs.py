"""The README and docs/ stay true to the tree: links resolve, named make targets and CLI command
groups exist, and the README stays short enough for a newcomer (issue 15 item 8).

Why: the reference moved out of the README into one page per part; links between pages, and
commands named in them, are what silently rot when files, targets or commands are renamed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

LINK = re.compile(r"\]\(([^)\s]+)\)")                      # [text](target) and ![alt](target)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
MAKE_TARGET = re.compile(r"\bmake ([a-z][\w-]*)")
COMMAND_GROUP = re.compile(r"(?<![\w./-])facemarket ([a-z][\w-]*)")
MAKE_RULE = re.compile(r"^([a-zA-Z][\w-]*)\s*:(?!=)", re.M)


def _code(text: str) -> str:
    """The text of fenced blocks and inline code spans: where commands are written."""
    return "\n".join(FENCE.findall(text) + CODE_SPAN.findall(FENCE.sub("", text)))


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lower case, punctuation dropped, spaces as '-'."""
    text = FENCE.sub("", page.read_text())
    headings = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def _relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(FENCE.sub("", page.read_text()))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]     # http:, https:, mailto: are not files


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path):
    links = _relative_links(page)
    broken = []
    for target in links:
        path_part, _, anchor = target.partition("#")
        target_file = (page.parent / path_part).resolve() if path_part else page
        if not target_file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and target_file.suffix == ".md" and anchor not in _anchors(target_file):
            broken.append(f"{target}: no heading #{anchor} in {target_file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_the_readme_links_to_every_docs_page_and_to_the_design_in_the_clone():
    text = README.read_text()
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in _relative_links(README)}
    unlinked = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert not unlinked, f"README.md does not point to {unlinked}"
    assert "shared/DESIGN.md" not in text, "a clone has no ../shared/DESIGN.md: point at docs/design.md"


def test_every_docs_page_links_back_to_the_readme():
    pages = [page for page in PAGES[1:] if "../README.md" not in _relative_links(page)]
    assert not pages, f"no link back to the README in {[page.name for page in pages]}"


def test_every_make_target_named_exists_in_the_makefile():
    targets = set(MAKE_RULE.findall((ROOT / "Makefile").read_text()))
    named = {(page.relative_to(ROOT), target) for page in PAGES for target in MAKE_TARGET.findall(_code(page.read_text()))}
    assert {target for _, target in named} >= {"demo", "test"}, "the README's two set-up commands are missing"
    missing = sorted(f"{page}: make {target}" for page, target in named if target not in targets)
    assert not missing, f"no such Makefile target: {missing}"


def test_the_readme_keeps_exactly_make_demo_and_make_test_as_the_set_up_commands():
    text = README.read_text()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    block = FENCE.search(setup)
    assert block is not None, "no command block under the README's set-up heading"
    commands = [line.split("#")[0].strip() for line in block.group(0).splitlines()[1:-1] if line.strip()]
    assert commands == ["make demo", "make test"]


def test_every_facemarket_command_group_in_the_readme_exists():
    result = subprocess.run([sys.executable, "-m", "facemarket.cli", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^  ([a-z][\w-]*)  ", result.stdout.split("Commands:", 1)[1], re.M))
    named = set(COMMAND_GROUP.findall(_code(README.read_text())))
    assert {"call", "account", "service"} <= named, f"the README's paid call names no commands: {named}"
    missing = sorted(named - listed)
    assert not missing, f"`facemarket --help` lists no {missing} (it lists {sorted(listed)})"


def test_the_readme_stays_under_250_lines():
    lines = README.read_text().count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move reference to docs/"
