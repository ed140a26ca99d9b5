"""Finds import circles between the modules of each Rust crate of the workspace (crates themselves cannot
form one: cargo refuses). A module is a source file; `use crate::a::b`, `crate::a::b::c` and `super::x`
in its production code (test modules left out) are its edges. Prints each circle; exits 1 if any.

Usage: python3 -m tools.checks.module_cycles [ROOT]
"""

import os
import re
import sys

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")


def production_code(text):
    """The text up to the first `#[cfg(test)]`, where each file's test module starts."""
    return text.split("#[cfg(test)]", 1)[0]


def module_of(src, path):
    relative = os.path.relpath(path, src)[:-3].replace(os.sep, "/")
    if relative in ("lib", "main"):
        return ""
    return relative[:-4] if relative.endswith("/mod") else relative


def resolve(modules, base, segments):
    """The longest prefix of base + segments that is a module of the crate."""
    parts = ([base] if base else []) + list(segments)
    for end in range(len(parts), 0, -1):
        candidate = "/".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def edges_of(src, files):
    modules = {module_of(src, f): f for f in files}
    edges = {m: set() for m in modules}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            code = production_code(handle.read())
        # Group imports `use crate::{a, b::c}` name several modules.
        code = re.sub(r"(crate|super)::\{([^}]*)\}",
                      lambda m: " ".join(f"{m.group(1)}::{item.strip()}" for item in m.group(2).split(",")), code)
        for root, rest in PATH.findall(code):
            segments = [s for s in rest.split("::") if s]
            if root == "crate":
                target = resolve(modules, "", segments)
            else:
                parent = module.rsplit("/", 1)[0] if "/" in module else ""
                target = resolve(modules, parent, segments)
            if target is not None and target != module and not module.startswith(target + "/"):
                edges[module].add(target)
    return edges


def cycles(edges):
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def crates(root):
    """Every crate under shared/ and functions/, and the CLI (a folder with Cargo.toml and src/)."""
    for directory, folders, files in os.walk(root):
        folders[:] = [f for f in folders if f not in ("target", ".git", "node_modules") and not f.startswith(".")]
        relative = os.path.relpath(directory, root)
        if relative.split(os.sep)[0] not in ("shared", "functions", "cli"):
            continue
        src = os.path.join(directory, "src")
        if "Cargo.toml" in files and os.path.isdir(src):
            sources = [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if f.endswith(".rs")]
            yield relative, src, sources


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    problems = 0
    checked = 0
    for name, src, files in crates(root):
        checked += 1
        for circle in cycles(edges_of(src, files)):
            problems += 1
            print(f"{name}: import circle " + " -> ".join(circle))
    print(f"module_cycles: {checked} crates, {problems} import circles")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
