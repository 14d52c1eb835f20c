"""The documentation's links and pictures lead somewhere, and it describes the product, not its history.

Every relative link and picture in README.md and docs/*.md names a file that exists, and every `#anchor`
a heading of that file (as GitHub makes anchors from headings). The docs are organised by topic: no
"issue N" headings or wording (the history is CHANGELOG.md's).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.common import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")


def prose(text: str) -> str:
    """The text outside fenced code blocks (a `# comment` in a shell block is not a heading)."""
    return re.sub(r"(?ms)^```.*?^```", "", text)


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes for a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(path.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n, unique = 0, slug
        while unique in found:  # a repeated heading gets -1, -2...
            n += 1
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


def links(path: Path) -> list[str]:
    return [a or b for a, b in LINK.findall(prose(path.read_text()))]


def test_the_scan_finds_links_pictures_and_anchors():
    readme = links(ROOT / "README.md")
    assert "docs/install-guide.md" in readme and "docs/screenshots/health.png" in readme
    assert "who-may-send-images-dicom_modalities" in anchors(ROOT / "docs" / "security.md")
    assert "8-point-the-x-ray-machine-at-the-pacs" in anchors(ROOT / "docs" / "install-guide.md")


def test_every_link_and_picture_leads_to_a_file_and_a_heading():
    broken = []
    for page in PAGES:
        for target in links(page):
            if re.match(r"[a-z]+:", target):  # https:, mailto: - outside the repository
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_the_docs_describe_the_product_not_its_history():
    for page in PAGES:
        names = " ".join(links(page))
        assert not re.search(r"\bissues? ?\d+", prose(page.read_text()), re.I), page
        assert not re.search(r"issue\d+", names), page
    assert not list((ROOT / "docs").rglob("issue*")), "pictures are named by what they show"
