"""Print the largest production files and functions of the workspace, so that growth is seen (no
limit: the aim is that a command, a handler or a rule reads on one screen or two). Production means
a Rust file's lines before its first `#[cfg(test)]`, outside tests/, benches/, fuzz/ and the
test-support crate.

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
        yield relative, path.read_text(encoding="utf-8").split("#[cfg(test)]")[0].splitlines()


def functions(lines):
    """(name, first line, length) of each fn: from its signature to the closing brace at its indent."""
    found = []
    for index, line in enumerate(lines):
        match = FUNCTION.match(line)
        if not match or line.rstrip().endswith(";"):
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
    print(f"largest production files (lines before #[cfg(test)]), of {len(files)}:")
    for relative, lines in sorted(files, key=lambda f: -len(f[1]))[: args.top]:
        print(f"  {len(lines):>5}  {relative}")
    every = [(length, f"{relative}:{line}", name) for relative, lines in files for name, line, length in functions(lines)]
    print("largest production functions (lines):")
    for length, where, name in sorted(every, reverse=True)[: args.top]:
        print(f"  {length:>5}  {name}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
