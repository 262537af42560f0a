#!/usr/bin/env python3
"""A Rust crate's module tree and the paths each module names, read from its sources without
a compiler (for tools/module_cycles.py).

A small lexer drops comments, string, character and raw-string literals and lifetimes; a
walker over its tokens follows `mod x;` (to `x.rs` or `x/mod.rs`, Rust 2018 paths) and inline
`mod x { ... }`, leaves out test code (modules named `tests`, and items under a `cfg` that
needs `test`), and records every path that starts with `crate`, `$crate`, `super` or `self`,
each path of a `use` tree, and the names each module's `use` declarations bring in.
`#[path]` attributes are not supported (tools/test_convention.py rejects them).
"""

import os

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

    def directories(self):
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.children:
                yield node
            stack.extend(node.children.values())
