"""mkdocs hooks: the site's home page is the README, its links made the site's own."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
OUTSIDE_DOCS = {"SECURITY.md": "security.md", "CHANGELOG.md": "changelog.md"}


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    text = README.read_text()
    text = text.replace("](docs/", "](")
    return re.sub(r"\]\((SECURITY|CHANGELOG)\.md\)", lambda m: f"]({OUTSIDE_DOCS[m.group(1) + '.md']})", text)
