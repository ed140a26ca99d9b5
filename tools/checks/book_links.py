"""Check every link of the built book (docs/book, `mdbook build docs`): each relative link must name
a page that exists, and each #fragment an id on that page. Links out of the book (http, https,
mailto) are listed, not fetched: the test machine has no internet. And the map of the tools: every
program under tools/ must be named in tools/README.md.

Usage: python3 -m tools.checks.book_links [BOOK_DIR]
"""

import html.parser
import pathlib
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_links(book):
    pages = {path: parse(path) for path in book.rglob("*.html")}
    broken, external = [], set()
    for path, page in pages.items():
        for href in page.links:
            url = urllib.parse.urlsplit(href)
            if url.scheme in ("http", "https", "mailto"):
                external.add(href)
                continue
            target = (path.parent / urllib.parse.unquote(url.path)).resolve() if url.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.relative_to(book)}: {href} (no such page)")
                continue
            if url.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if url.fragment not in ids:
                    broken.append(f"{path.relative_to(book)}: {href} (no #{url.fragment} there)")
    return len(pages), broken, sorted(external)


TOOL_SUFFIXES = {".py", ".sh"}


def unnamed_tools(root=ROOT):
    """The programs under tools/ (each .py and .sh outside tests/, and each Rust tool's folder) that
    tools/README.md does not name."""
    readme = (root / "tools" / "README.md").read_text(encoding="utf-8")
    tools = root / "tools"
    programs = [path.name for path in tools.rglob("*")
                if path.suffix in TOOL_SUFFIXES and path.name != "__init__.py"
                and "tests" not in path.relative_to(tools).parts
                and "spec" not in path.relative_to(tools).parts]
    programs += [path.parent.name for path in tools.glob("*/Cargo.toml")]
    return sorted(name for name in set(programs) if f"`{name}`" not in readme)


def main():
    missing = unnamed_tools()
    for name in missing:
        print(f"tools/README.md does not name {name}")
    book = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "book"
    if not (book / "index.html").exists():
        print(f"{book} holds no built book: run mdbook build docs first")
        return 1
    count, broken, external = broken_links(book.resolve())
    for line in broken:
        print(f"broken: {line}")
    print(f"{count} pages, {len(broken)} broken links, {len(external)} links out of the book (not fetched)")
    return 1 if broken or missing else 0


if __name__ == "__main__":
    sys.exit(main())
