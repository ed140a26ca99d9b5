"""The book's link check finds what is broken, and the size report measures functions rightly.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import pathlib
import tempfile
import unittest

from tools.checks.book_links import broken_links
from tools.checks.largest import functions


class BookLinks(unittest.TestCase):
    def test_a_missing_page_and_a_missing_fragment_are_broken_and_links_out_are_only_listed(self):
        with tempfile.TemporaryDirectory() as directory:
            book = pathlib.Path(directory)
            (book / "index.html").write_text(
                '<h1 id="top">x</h1><a href="a.html#here">ok</a><a href="a.html#gone">no</a>'
                '<a href="missing.html">no</a><a href="https://example.invalid/">out</a><a href="#top">self</a>'
            )
            (book / "a.html").write_text('<h2 id="here">a</h2><a href="index.html">back</a>')
            pages, broken, external = broken_links(book)
        self.assertEqual(pages, 2)
        self.assertEqual(sorted(broken), ["index.html: a.html#gone (no #gone there)",
                                          "index.html: missing.html (no such page)"])
        self.assertEqual(external, ["https://example.invalid/"])


class Sizes(unittest.TestCase):
    def test_a_function_runs_from_its_signature_to_the_brace_at_its_indent(self):
        lines = [
            "pub async fn outer(x: u8) -> u8 {",
            "    let f = |y| {",
            "    };",
            "    x",
            "}",
            "impl A {",
            "    fn inner(&self) {",
            "    }",
            "    fn declared(&self);",
            "}",
        ]
        self.assertEqual(functions(lines), [("outer", 1, 5), ("inner", 7, 2)])


if __name__ == "__main__":
    unittest.main()
