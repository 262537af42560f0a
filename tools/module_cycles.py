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
followed; the `use` that brought the name in was. Comments, strings and character literals
are skipped by a small lexer. `#[path]` attributes are not supported (tools/test_convention.py
rejects them).

A strongly connected component with more than one node is a cycle; every elementary cycle in
it is printed, each edge with the first place that names the target. Exit status 1 when a
cycle is found that `ALLOWED_CYCLES` does not list.
"""

import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATE_ROOTS = ["crates/core/src/lib.rs", "crates/filter/src/lib.rs"]

# Cycles tolerated for now, as (crate root, directory's module path, the modules of the
# strongly connected component): a component whose modules are all inside one listed set is
# reported as a warning, not a failure. Only in code under rewrite; to be emptied.
ALLOWED_CYCLES = []

# Printed per component at most; the count of the rest is given.
MAX_CYCLES_SHOWN = 20


# ----------------------------------------------------------------------------------- lexer


class Tok:
    __slots__ = ("text", "line")

    def __init__(self, text, line):
        self.text = text
        self.line = line

    def __repr__(self):
        return f"{self.text!r}@{self.line}"


def _is_ident_start(c):
    return c.isalpha() or c == "_"


def _is_ident_char(c):
    return c.isalnum() or c == "_"


def lex(src):
    """Rust source to tokens: identifiers, `::`, and single punctuation characters. Comments,
    string, byte-string, raw-string and character literals and lifetimes are dropped (a
    literal becomes the token `"lit"`, so item boundaries are kept)."""
    toks = []
    i, n, line = 0, len(src), 1

    def skip_quoted(j):
        """`j` is just after an opening `"`; returns the index after the closing one."""
        nonlocal line
        while j < n:
            c = src[j]
            if c == "\\":
                if j + 1 < n and src[j + 1] == "\n":
                    line += 1
                j += 2
                continue
            if c == "\n":
                line += 1
            if c == '"':
                return j + 1
            j += 1
        return j

    def skip_raw(j):
        """`j` is at the `#`s or `"` after an `r`; returns the index after the literal."""
        nonlocal line
        hashes = 0
        while j < n and src[j] == "#":
            hashes += 1
            j += 1
        if j >= n or src[j] != '"':
            return None
        end = '"' + "#" * hashes
        k = src.find(end, j + 1)
        if k < 0:
            k = n
        line += src.count("\n", j, k)
        return k + len(end)

    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            k = src.find("\n", i)
            i = n if k < 0 else k
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if src[i] == "\n":
                        line += 1
                    i += 1
        elif c == '"':
            start_line = line
            i = skip_quoted(i + 1)
            toks.append(Tok('"lit"', start_line))
        elif c in "brc" and _raw_or_prefixed_string(src, i):
            start_line = line
            j = i + 1
            if c == "b" and j < n and src[j] == "r":
                j += 1
            if src[j] == '"':
                i = skip_quoted(j + 1)
            else:
                end = skip_raw(j)
                i = end if end is not None else j
            toks.append(Tok('"lit"', start_line))
        elif c == "b" and src.startswith("b'", i):
            i = _skip_char(src, i + 1)
            toks.append(Tok('"lit"', line))
        elif c == "'":
            # A character literal ('x', '\n', '\u{1F600}') or a lifetime / label ('a).
            if i + 1 < n and src[i + 1] == "\\":
                i = _skip_char(src, i)
                toks.append(Tok('"lit"', line))
            elif i + 2 < n and src[i + 2] == "'":
                i += 3
                toks.append(Tok('"lit"', line))
            else:
                j = i + 1
                while j < n and _is_ident_char(src[j]):
                    j += 1
                i = j
        elif c == "r" and src.startswith("r#", i) and i + 2 < n and _is_ident_start(src[i + 2]):
            j = i + 2
            while j < n and _is_ident_char(src[j]):
                j += 1
            toks.append(Tok(src[i + 2 : j], line))
            i = j
        elif _is_ident_start(c):
            j = i + 1
            while j < n and _is_ident_char(src[j]):
                j += 1
            toks.append(Tok(src[i:j], line))
            i = j
        elif c.isdigit():
            j = i + 1
            while j < n and _is_ident_char(src[j]):
                j += 1
            toks.append(Tok("0", line))
            i = j
        elif src.startswith("::", i):
            toks.append(Tok("::", line))
            i += 2
        else:
            toks.append(Tok(c, line))
            i += 1
    return toks


def _raw_or_prefixed_string(src, i):
    """At `b"`, `c"`, `r"`, `r#"`, `br"`, `br#"` (not an identifier such as `bar`)."""
    j = i + 1
    if src[i] == "b" and src.startswith("r", j):
        j += 1
    if j < len(src) and src[j] == '"':
        return True
    if src[i] in "br" and (src[i] == "r" or j == i + 2):
        k = j
        while k < len(src) and src[k] == "#":
            k += 1
        return k > j and k < len(src) and src[k] == '"'
    return False


def _skip_char(src, i):
    """`i` is at the opening `'` of a character literal; returns the index after it."""
    j = i + 1
    if j < len(src) and src[j] == "\\":
        j += 2
    while j < len(src) and src[j] != "'":
        j += 1
    return j + 1


# ---------------------------------------------------------------------------------- parser

OPEN = {"(": ")", "[": "]", "{": "}"}
CLOSE = {")", "]", "}"}


def matching(toks, i):
    """Index of the bracket closing the one at `i`."""
    depth = 0
    for k in range(i, len(toks)):
        t = toks[k].text
        if t in OPEN:
            depth += 1
        elif t in CLOSE:
            depth -= 1
            if depth == 0:
                return k
    return len(toks) - 1


def cfg_needs_test(toks):
    """Whether an attribute's tokens (inside `#[...]`) are a `cfg` that holds only in tests."""
    if len(toks) < 3 or toks[0].text != "cfg" or toks[1].text != "(":
        return False
    value, _ = _cfg_pred(toks, 2)
    return value


def _cfg_pred(toks, i):
    """Parses one cfg predicate at `i`; returns (needs test, index after it)."""
    name = toks[i].text if i < len(toks) else ""
    i += 1
    if i < len(toks) and toks[i].text == "(":
        args = []
        i += 1
        while i < len(toks) and toks[i].text != ")":
            value, i = _cfg_pred(toks, i)
            args.append(value)
            if i < len(toks) and toks[i].text == ",":
                i += 1
        i += 1
        if name == "all":
            return any(args), i
        if name == "any":
            return bool(args) and all(args), i
        return False, i  # not(...) and unknown ones
    if i < len(toks) and toks[i].text == "=":
        return False, i + 2
    return name == "test", i


def item_end(toks, i, end):
    """Index after the item (or field, variant, statement) starting at `i`."""
    first = None
    k = i
    while k < end:
        t = toks[k].text
        if t == "#":
            k = matching(toks, k + 1 if toks[k + 1].text == "[" else k + 2) + 1
            continue
        if first is None and t not in ("pub", "(", ")", "crate", "super", "self", "in"):
            first = t
        if t in OPEN:
            close = matching(toks, k)
            if t == "{" and first not in ("const", "static", "let", "type", "use"):
                return close + 1
            k = close + 1
            continue
        if t in CLOSE:
            return k
        if t in (";", ","):
            return k + 1
        k += 1
    return end


def absolute(module_path, path):
    """A path as written in module `module_path` to a tuple from the crate root; None when it
    does not start with `crate`, `super` or `self`."""
    first = path[0] if path else ""
    if first == "crate":
        return tuple(path[1:])
    if first not in ("super", "self"):
        return None
    base = list(module_path)
    rest = list(path)
    while rest and rest[0] in ("super", "self"):
        if rest.pop(0) == "super":
            if not base:
                return None
            base.pop()
    return tuple(base + rest)


class Module:
    def __init__(self, path, file, child_dir):
        self.path = path  # tuple of names from the crate root
        self.file = file
        self.child_dir = child_dir  # where `mod x;` looks for x.rs / x/mod.rs
        self.children = {}  # name -> Module
        self.imports = {}  # name a `use` brings in -> the path as written


class Crate:
    """One crate's module tree (test modules left out) and the paths each module names."""

    def __init__(self, root_file):
        self.root_file = root_file
        self.root = Module((), root_file, os.path.dirname(root_file))
        self.refs = []  # (module path, absolute target path, file, line, text)
        self.errors = []
        self._load_file(self.root)

    def _load_file(self, module):
        with open(module.file, encoding="utf-8") as f:
            toks = lex(f.read())
        self._walk(toks, 0, len(toks), module)

    def _walk(self, toks, i, end, module):
        while i < end:
            t = toks[i].text
            if t == "#" and i + 1 < end and toks[i + 1].text in ("[", "!"):
                inner = toks[i + 1].text == "!"
                open_at = i + 2 if inner else i + 1
                close = matching(toks, open_at)
                if cfg_needs_test(toks[open_at + 1 : close]):
                    if inner:
                        return  # the rest of this module is test code
                    i = item_end(toks, close + 1, end)
                else:
                    i = close + 1
                continue
            if (
                t == "mod"
                and i + 2 < end
                and _is_ident_start(toks[i + 1].text[0])
                and toks[i + 2].text in (";", "{")
            ):
                name = toks[i + 1].text
                if toks[i + 2].text == ";":
                    if name != "tests":
                        self._child_file(module, name, toks[i].line)
                    i += 3
                else:
                    close = matching(toks, i + 2)
                    if name != "tests":
                        child = Module(
                            module.path + (name,), module.file, os.path.join(module.child_dir, name)
                        )
                        module.children[name] = child
                        self._walk(toks, i + 3, close, child)
                    i = close + 1
                continue
            if t == "use":
                paths, i = self._use_tree(toks, i + 1, [])
                for path, line, name in paths:
                    self._record(module, path, line)
                    if name not in (None, "_", "*"):
                        module.imports.setdefault(name, path)
                continue
            if t == "$" and i + 1 < end and toks[i + 1].text == "crate":
                i += 1
                continue
            if t in ("crate", "super", "self") and i + 1 < end and toks[i + 1].text == "::":
                path = [t]
                line = toks[i].line
                i += 2
                while i < end and _is_ident_start(toks[i].text[0]):
                    path.append(toks[i].text)
                    if i + 1 < end and toks[i + 1].text == "::":
                        i += 2
                    else:
                        i += 1
                        break
                self._record(module, path, line)
                continue
            i += 1

    def _use_tree(self, toks, i, prefix):
        """Parses a use tree at `i`; returns ([(path, line, name it binds)], index after it)."""
        path = list(prefix)
        out = []
        if i < len(toks) and toks[i].text == "::":
            i += 1
        while i < len(toks):
            tok = toks[i]
            if tok.text == "{":
                i += 1
                while i < len(toks) and toks[i].text != "}":
                    sub, i = self._use_tree(toks, i, path)
                    out.extend(sub)
                    if i < len(toks) and toks[i].text == ",":
                        i += 1
                return out, i + 1
            if tok.text == "*":
                return [(path, tok.line, None)], i + 1
            if tok.text == "$":
                i += 1
                continue
            if _is_ident_start(tok.text[0]):
                if not (tok.text == "self" and path):
                    path.append(tok.text)
                i += 1
                if i < len(toks) and toks[i].text == "::":
                    i += 1
                    continue
                name = path[-1] if path else None
                if i + 1 < len(toks) and toks[i].text == "as":
                    name = toks[i + 1].text
                    i += 2
                return [(path, tok.line, name)], i
            return out, i  # `;`, `,` or `}` of the enclosing tree
        return out, i

    def _child_file(self, module, name, line):
        candidates = [
            os.path.join(module.child_dir, name + ".rs"),
            os.path.join(module.child_dir, name, "mod.rs"),
        ]
        found = [c for c in candidates if os.path.isfile(c)]
        if not found:
            self.errors.append(f"{module.file}:{line}: no file for `mod {name};`")
            return
        file = found[0]
        base = os.path.basename(file)
        child_dir = os.path.dirname(file) if base == "mod.rs" else os.path.join(module.child_dir, name)
        child = Module(module.path + (name,), file, child_dir)
        module.children[name] = child
        self._load_file(child)

    def _record(self, module, path, line):
        target = absolute(module.path, path)
        if target is not None:
            self.refs.append((module.path, target, module.file, line, "::".join(path)))

    def resolve(self, target):
        """`target` with names that a module imports (`use child::X;` in a parent, then
        `super::X` in a child) replaced by the path they were imported from, so that a parent's
        re-export does not hide a dependency between its children."""
        for _ in range(16):
            node, k = self.root, 0
            while k < len(target) and target[k] in node.children:
                node, k = node.children[target[k]], k + 1
            if k == len(target) or target[k] not in node.imports:
                return target
            written = node.imports[target[k]]
            if written[0] in node.children:  # `use child::X;` (2018 paths)
                written = ["self"] + list(written)
            origin = absolute(node.path, written)
            if origin is None or origin[: len(node.path) + 1] == target[: len(node.path) + 1]:
                return target
            target = origin + target[k + 1 :]
        return target

    def module(self, path):
        node = self.root
        for name in path:
            node = node.children.get(name)
            if node is None:
                return None
        return node

    def edges(self):
        """{directory path: {(a, b): (file, line, text) of the first reference}}."""
        out = {}
        for src, target, file, line, text in self.refs:
            target = self.resolve(target)
            k = 0
            while k < len(src) and k < len(target) and src[k] == target[k]:
                k += 1
            if k == len(src) or k == len(target):
                continue  # into itself or a descendant, or the parent itself
            directory = self.module(src[:k])
            if directory is None or target[k] not in directory.children:
                continue  # a parent's own item
            edge = (src[k], target[k])
            out.setdefault(src[:k], {}).setdefault(edge, (file, line, text))
        return out

    def directories(self):
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.children:
                yield node
            stack.extend(node.children.values())


# ---------------------------------------------------------------------------------- cycles


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
    all_edges = crate.edges()
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
            for directory, edges in sorted(crate.edges().items()):
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
