"""The book's link check finds what is broken, and the size report measures functions rightly.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import pathlib
import tempfile
import unittest

from tools.checks.book_links import broken_links, unnamed_tools
from tools.checks.largest import functions, without_test_items


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

    def test_a_tool_the_map_of_the_tools_does_not_name_is_found(self):
        with tempfile.TemporaryDirectory() as directory:
            root = pathlib.Path(directory)
            tools = root / "tools"
            for path in ["checks/named.py", "checks/unnamed.py", "checks/__init__.py", "checks/tests/test_x.py",
                         "postgres/serve.sh", "floor/Cargo.toml"]:
                (tools / path).parent.mkdir(parents=True, exist_ok=True)
                (tools / path).write_text("")
            (tools / "README.md").write_text("| `named.py` | ... |\n| `serve.sh` | ... |\n")
            self.assertEqual(unnamed_tools(root), ["floor", "unnamed.py"])


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

    def test_a_trait_method_declared_over_lines_is_no_function(self):
        lines = [
            "pub trait Port {",
            "    fn get(",
            "        &self,",
            "    ) -> u8;",
            "}",
            "fn after() {",
            "}",
        ]
        self.assertEqual(functions(lines), [("after", 6, 2)])

    def test_every_test_item_is_left_out_not_only_what_follows_the_first(self):
        lines = [
            "pub struct A;",
            "#[cfg(test)]",
            "impl A {",
            "    fn for_tests() {}",
            "}",
            "pub fn production() {",
            "}",
            "#[cfg(test)]",
            "mod tests {",
            "    fn t() {}",
            "}",
            "#[cfg(test)]",
            "mod more;",
        ]
        self.assertEqual(without_test_items(lines), ["pub struct A;", "pub fn production() {", "}"])


if __name__ == "__main__":
    unittest.main()
