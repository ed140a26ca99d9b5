"""Print the largest production files and functions of the workspace, so that growth is seen (no
limit: the aim is that a command, a handler or a rule reads on one screen or two). Production means
a Rust file's lines without its `#[cfg(test)]` items (a test module, or a helper for tests anywhere
in the file), outside tests/, benches/, fuzz/ and the test-support crate. A function is counted from
its signature to its closing brace; a declaration without a body (a trait's) is no function.

Usage: python3 -m tools.checks.largest [--top N]
"""

import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SKIPPED_PARTS = {"tests", "benches", "target", "fuzz", "test-support", ".tools"}
FUNCTION = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:const\s+)?fn\s+(\w+)")


def production_files(root):
    for path in sorted(root.rglob("*.rs")):
        relative = path.relative_to(root)
        if SKIPPED_PARTS & set(relative.parts) or relative.parts[0].startswith("."):
            continue
        yield relative, without_test_items(path.read_text(encoding="utf-8").splitlines())


def without_test_items(lines):
    """The lines left when every item under `#[cfg(test)]` is taken out: to its closing brace at the
    attribute's indent, or to its `;` for an item of one statement (`mod tests;`)."""
    kept, index = [], 0
    while index < len(lines):
        line = lines[index]
        if line.strip() != "#[cfg(test)]":
            kept.append(line)
            index += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        start = index + 1
        while start < len(lines) and lines[start].strip().startswith("#["):
            start += 1
        end = start
        if not (start < len(lines) and lines[start].rstrip().endswith(";")):
            while end < len(lines) and lines[end] != indent + "}":
                end += 1
        index = end + 1
    return kept


def signature_ends_with_body(lines, index):
    """Whether the signature starting at `index` opens a body (`{`) rather than ending (`;`)."""
    for line in lines[index:]:
        stripped = line.rstrip()
        if stripped.endswith("{"):
            return True
        if stripped.endswith(";"):
            return False
    return False


def functions(lines):
    """(name, first line, length) of each fn: from its signature to the closing brace at its indent."""
    found = []
    for index, line in enumerate(lines):
        match = FUNCTION.match(line)
        if not match or not signature_ends_with_body(lines, index):
            continue
        indent = match.group(1)
        for end in range(index + 1, len(lines)):
            if lines[end] == indent + "}":
                found.append((match.group(2), index + 1, end - index + 1))
                break
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    files = list(production_files(ROOT))
    print(f"largest production files (lines outside #[cfg(test)] items), of {len(files)}:")
    for relative, lines in sorted(files, key=lambda f: -len(f[1]))[: args.top]:
        print(f"  {len(lines):>5}  {relative}")
    every = [(length, f"{relative}:{line}", name) for relative, lines in files for name, line, length in functions(lines)]
    print("largest production functions (lines):")
    for length, where, name in sorted(every, reverse=True)[: args.top]:
        print(f"  {length:>5}  {name}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
