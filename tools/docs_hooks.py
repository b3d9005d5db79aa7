"""mkdocs hooks: the site's home page is the README, its links made the site's own."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
OUTSIDE_DOCS = {"SECURITY.md": "security.md", "CHANGELOG.md": "changelog.md", "CONTRIBUTING.md": "contributing.md"}


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    text = README.read_text()
    text = text.replace("](docs/", "](")
    outside = "|".join(map(re.escape, OUTSIDE_DOCS))
    return re.sub(rf"\]\(({outside})\)", lambda m: f"]({OUTSIDE_DOCS[m.group(1)]})", text)
