#!/usr/bin/env python3
"""Fails when the modules of a Rust crate depend on each other in a cycle.

Usage: tools/module_cycles.py [--graph] [CRATE_ROOT ...]   (default: the crates below)
       tools/module_cycles.py --self-test

The graph, one per module directory
-----------------------------------
A module directory is the crate root or any module that has child modules. For each one:

* Nodes are its child modules (`x.rs`, `x/mod.rs` or an inline `mod x { ... }`), each
  standing for itself and all its descendants.
* An edge A -> B exists when code in A (or in a descendant of A) names a path into sibling B:
  `crate::...::B...`, `super::B...` (any number of `super`s), `self::B...`, `$crate::...`, and
  every path of a `use` tree (`use crate::{a::x, b}` names both `a` and `b`). Paths in item
  bodies count as well as `use` declarations.
* Parent <-> child references are not edges: a child naming its parent's own items, or a
  parent naming its children, is the normal shape of a module tree. A name the parent only
  imports is followed to where it comes from, though: with `pub use b::X;` in the parent,
  `super::X` in A is a path into B (a re-export does not hide a dependency).
* Test code is left out: child modules named `tests`, and every item under an attribute
  `#[cfg(test)]` (or a `cfg` that needs `test`, such as `all(test, ...)`), such as a
  `tests_support` module.

A path is resolved against the module tree as written (no name resolution): its longest
common prefix with the referring module is the directory, and the next segment of each is the
edge's two ends, when the target's segment is a child module of that directory. A path that
starts with another name (an external crate, a child module, an imported name) is not
followed; the `use` that brought the name in was. tools/rust_modules.py reads the sources
(comments and literals skipped; `#[path]` is not supported, tools/test_convention.py rejects
it).

A strongly connected component with more than one node is a cycle; every elementary cycle in
it is printed, each edge with the first place that names the target. Exit status 1 when a
cycle is found that `ALLOWED_CYCLES` does not list.
"""

import os
import sys
import tempfile

from rust_modules import Crate, lex

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATE_ROOTS = [
    "crates/core/src/lib.rs",
    "crates/filter/src/lib.rs",
    "emulator/src/main.rs",
    "tests/harness/mod.rs",
    "bench/noop-filter/src/lib.rs",
    "tools/config-schema/src/lib.rs",
]

# Cycles accepted, as (crate root, directory's module path, the modules of the strongly
# connected component): a component whose modules are all inside one listed set is reported
# as a warning, not a failure. None is accepted.
ALLOWED_CYCLES = []

# Printed per component at most; the count of the rest is given.
MAX_CYCLES_SHOWN = 20


# ---------------------------------------------------------------------------------- cycles


def sibling_edges(crate):
    """{directory path: {(a, b): (file, line, text) of the first reference}}."""
    out = {}
    for src, target, file, line, text in crate.refs:
        target = crate.resolve(target)
        k = 0
        while k < len(src) and k < len(target) and src[k] == target[k]:
            k += 1
        if k == len(src) or k == len(target):
            continue  # into itself or a descendant, or the parent itself
        directory = crate.module(src[:k])
        if directory is None or target[k] not in directory.children:
            continue  # a parent's own item
        edge = (src[k], target[k])
        out.setdefault(src[:k], {}).setdefault(edge, (file, line, text))
    return out


def strongly_connected(nodes, succ):
    """Tarjan's algorithm; returns the components with more than one node."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def elementary_cycles(comp, succ, limit):
    """The simple cycles inside one component, each starting at its smallest node; at most
    `limit` of them, and the total count."""
    members = set(comp)
    cycles, total = [], 0
    for start in sorted(comp):
        # Cycles whose smallest node is `start`: a DFS over nodes not smaller than it.
        allowed = {v for v in members if v >= start}
        path, on_path = [start], {start}

        def dfs(v):
            nonlocal total
            for w in sorted(succ.get(v, ())):
                if w not in allowed:
                    continue
                if w == start:
                    total += 1
                    if len(cycles) < limit:
                        cycles.append(list(path))
                elif w not in on_path:
                    path.append(w)
                    on_path.add(w)
                    dfs(w)
                    on_path.discard(w)
                    path.pop()

        dfs(start)
    return cycles, total


def find_cycles(crate):
    """[(directory path, component, [cycle], total, edges)] for every component of the
    crate's module directories."""
    found = []
    all_edges = sibling_edges(crate)
    for directory in crate.directories():
        edges = all_edges.get(directory.path, {})
        succ = {}
        for a, b in edges:
            succ.setdefault(a, set()).add(b)
        for comp in strongly_connected(directory.children.keys(), succ):
            cycles, total = elementary_cycles(comp, succ, MAX_CYCLES_SHOWN)
            found.append((directory.path, comp, cycles, total, edges))
    return found


def rel(path):
    return os.path.relpath(path, REPO) if path.startswith(REPO) else path


def allowed(root_file, directory, comp, allow):
    for root, where, members in allow:
        if rel(root_file) == root and tuple(directory) == tuple(where) and set(comp) <= set(members):
            return True
    return False


def check(root_files, allow, show_graph=False, out=sys.stdout):
    """Prints every cycle; returns the number not allowed (and problems reading the tree)."""
    failures = 0
    for root_file in root_files:
        crate = Crate(root_file)
        for error in crate.errors:
            print(f"error: {error}", file=out)
            failures += 1
        if show_graph:
            for directory, edges in sorted(sibling_edges(crate).items()):
                name = "::".join(("crate",) + directory)
                for (a, b), (file, line, text) in sorted(edges.items()):
                    print(f"{rel(root_file)} {name}: {a} -> {b}  ({rel(file)}:{line} {text})", file=out)
        for directory, comp, cycles, total, edges in find_cycles(crate):
            ok = allowed(root_file, directory, comp, allow)
            label = "allowed for now" if ok else "error"
            name = "::".join(("crate",) + directory)
            print(f"{label}: module cycle in {rel(root_file)} {name} among {{{', '.join(comp)}}}", file=out)
            for cycle in cycles:
                print("  " + " -> ".join(cycle + [cycle[0]]), file=out)
                for a, b in zip(cycle, cycle[1:] + cycle[:1]):
                    file, line, text = edges[(a, b)]
                    print(f"      {a} -> {b}: {rel(file)}:{line} `{text}`", file=out)
            if total > len(cycles):
                print(f"  ... and {total - len(cycles)} more cycles", file=out)
            if not ok:
                failures += 1
    return failures


# ------------------------------------------------------------------------------- self-test

SELF_TESTS = [
    # (name, {file: source}, expected components as {directory: [members]})
    (
        "acyclic tree: parent <-> child, test code and `tests` modules are not edges",
        {
            "lib.rs": "pub mod a; pub mod b; mod c;\nuse crate::a::A;\n",
            "a.rs": (
                "use crate::b::B;\n"
                "pub struct A;\n"
                "#[cfg(test)]\nuse crate::c::C;\n"
                "#[cfg(test)]\nmod tests;\n"
                "#[cfg(all(test, unix))]\nfn helper() { crate::c::f(); }\n"
            ),
            "a/tests.rs": "use crate::c::C;\n",
            "b/mod.rs": "pub mod inner;\npub struct B;\nuse self::inner::I;\nuse super::Root;\n",
            "b/inner.rs": "use super::B;\npub struct I;\n// crate::c::C in a comment\n",
            "c.rs": (
                "use crate::b::inner::I;\n"
                "const S: &str = \"crate::a::A\";\n"
                "const R: &str = r#\"super::a\"#;\n"
                "fn f<'a>(x: &'a str) -> char { let _ = x; '{' }\n"
                "#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n"
                "#[cfg(test)]\npub mod tests_support { use crate::a::A; }\n"
            ),
        },
        {},
    ),
    (
        "a 2-cycle through `crate::` and `super::`",
        {
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "pub fn f() { crate::b::g(); }\n",
            "b.rs": "use super::a::f;\npub fn g() {}\n",
        },
        {"": ["a", "b"]},
    ),
    (
        "a 3-cycle, deeper in the tree (one end through a descendant)",
        {
            "lib.rs": "pub mod http;\n",
            "http/mod.rs": "pub mod x;\npub mod y;\npub mod z;\n",
            "http/x.rs": "use super::y::Y;\npub struct X;\n",
            "http/y.rs": "pub struct Y;\nimpl Y { fn z() -> super::z::deep::D { todo!() } }\n",
            "http/z.rs": "pub mod deep;\n",
            "http/z/deep.rs": "pub struct D;\nuse super::super::x::X;\n",
        },
        {"http": ["x", "y", "z"]},
    ),
    (
        "`use crate::{a::x, b}` trees name every branch",
        {
            "lib.rs": "mod a;\nmod b;\nmod c;\n",
            "a.rs": "pub mod x;\nuse crate::{b, c::{self as cc}};\n",
            "a/x.rs": "pub struct X;\n",
            "b.rs": "pub struct B;\n",
            "c.rs": "use crate::{a::x, b};\n",
        },
        {"": ["a", "c"]},
    ),
    (
        "a parent's re-export is followed to the sibling it comes from",
        {
            "lib.rs": "mod p;\n",
            "p/mod.rs": "mod a;\nmod b;\npub use a::A;\nuse self::b::B as Bee;\n",
            "p/a.rs": "pub struct A;\nfn f() -> super::Bee { todo!() }\n",
            "p/b.rs": "pub struct B;\nuse super::A;\n",
        },
        {"p": ["a", "b"]},
    ),
    (
        "an inline module is a node too",
        {
            "lib.rs": "mod a { pub fn f() { super::b::g() } }\nmod b { use crate::a; pub fn g() {} }\n",
        },
        {"": ["a", "b"]},
    ),
]


def self_test():
    failed = 0
    for name, files, expected in SELF_TESTS:
        with tempfile.TemporaryDirectory() as tmp:
            for path, text in files.items():
                full = os.path.join(tmp, path)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "w", encoding="utf-8") as f:
                    f.write(text)
            crate = Crate(os.path.join(tmp, "lib.rs"))
            got = {"::".join(d): c for d, c, _, _, _ in find_cycles(crate)}
            problems = list(crate.errors)
            if got != expected:
                problems.append(f"components {got}, expected {expected}")
            if not problems and expected:
                with open(os.devnull, "w") as devnull:
                    if check([os.path.join(tmp, "lib.rs")], [], out=devnull) != len(expected):
                        problems.append("check() did not fail on it")
        status = "ok" if not problems else "FAILED: " + "; ".join(problems)
        print(f"self-test: {name}: {status}")
        failed += bool(problems)
    # The lexer on the forms that could hide or invent a path.
    toks = [t.text for t in lex("b'\"' r\"a\" br#\"x\"# 'x' '\\'' 'a /* /* */ */ c\"s\" r#match")]
    if toks != ['"lit"', '"lit"', '"lit"', '"lit"', '"lit"', '"lit"', "match"]:
        print(f"self-test: lexer: FAILED: {toks}")
        failed += 1
    else:
        print("self-test: lexer: ok")
    return failed


def main(argv):
    if argv[:1] == ["--self-test"]:
        return 1 if self_test() else 0
    show_graph = "--graph" in argv
    roots = [a for a in argv if not a.startswith("--")] or [os.path.join(REPO, r) for r in CRATE_ROOTS]
    failures = check([os.path.abspath(r) for r in roots], ALLOWED_CYCLES, show_graph)
    if failures:
        print(f"{failures} module cycle(s) or error(s); see tools/module_cycles.py for the rules")
        return 1
    print(f"no module cycles in {', '.join(rel(os.path.abspath(r)) for r in roots)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
