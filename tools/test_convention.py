#!/usr/bin/env python3
"""Fails when Rust unit tests do not follow the project's one convention.

Usage: tools/test_convention.py [--self-test]

The convention: a module's unit tests are its `tests` submodule, declared
`#[cfg(test)] mod tests;` and kept in a file next to the module: `foo/tests.rs` for `foo.rs`
or `foo/mod.rs` (Rust 2018 submodule paths), or a `foo/tests/` folder when large. So in the
sources checked here there is no inline `mod tests { ... }` block, no `#[path = ...]`
attribute, and every `mod tests;` is under `#[cfg(test)]`.
"""

import glob
import os
import re
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [
    "crates/*/src",
    "emulator/src",
    "bench/noop-filter/src",
    "fuzz/src",
    "fuzz/fuzz_targets",
    "tools/config-schema/src",
    "tests/harness",
    "tests/behaviour",
    "tests/shipping",
]

# Paths (prefixes, relative to the repository) exempt from the check: none.
ALLOWED: list = []

INLINE = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+tests\s*\{")
DECLARED = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+tests\s*;")
PATH_ATTR = re.compile(r"#\s*\[\s*path\b")
CFG_TEST = re.compile(r"^\s*#\[cfg\(test\)\]\s*$")


def problems_in(path, text):
    out = []
    previous = ""
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("//", 1)[0] if line.lstrip().startswith("//") else line
        if INLINE.match(code):
            out.append(f"{path}:{number}: inline `mod tests {{`: move it to the module's tests.rs")
        if PATH_ATTR.search(code):
            out.append(f"{path}:{number}: `#[path]`: name the file by the module tree instead")
        if DECLARED.match(code) and not CFG_TEST.match(previous):
            out.append(f"{path}:{number}: `mod tests;` without `#[cfg(test)]` on the line before")
        if line.strip():
            previous = line
    return out


def check(root, allowed):
    found = []
    for pattern in SOURCES:
        for base in sorted(glob.glob(os.path.join(root, pattern))):
            for folder, _, files in os.walk(base):
                for name in sorted(files):
                    if not name.endswith(".rs"):
                        continue
                    path = os.path.relpath(os.path.join(folder, name), root)
                    if any(path.startswith(prefix) for prefix in allowed):
                        continue
                    with open(os.path.join(root, path), encoding="utf-8") as f:
                        found.extend(problems_in(path, f.read()))
    return found


def self_test():
    cases = {
        "crates/x/src/a.rs": ("fn f() {}\n#[cfg(test)]\nmod tests {\n}\n", 1),
        "crates/x/src/b.rs": ('#[cfg(test)]\n#[path = "b_tests.rs"]\nmod tests;\n', 2),
        "crates/x/src/c.rs": ("pub mod tests;\n", 1),
        "crates/x/src/d.rs": ("// mod tests { in a comment\n#[cfg(test)]\n\nmod tests;\n", 0),
        "crates/x/src/skip/e.rs": ("mod tests {}\n", 0),
    }
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path, (text, _) in cases.items():
            full = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        found = check(tmp, ["crates/x/src/skip/"])
        for path, (_, expected) in cases.items():
            got = sum(1 for p in found if p.startswith(path + ":"))
            status = "ok" if got == expected else f"FAILED: {got} problems, expected {expected}"
            failed += got != expected
            print(f"self-test: {path}: {status}")
    return failed


def main(argv):
    if argv[:1] == ["--self-test"]:
        return 1 if self_test() else 0
    found = check(REPO, ALLOWED)
    for problem in found:
        print(problem)
    if found:
        print(f"{len(found)} unit-test layout problem(s); see tools/test_convention.py")
        return 1
    print("unit tests follow the convention (tests.rs next to each module)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
