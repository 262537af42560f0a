"""P3: the release .wasm's size, and what each crate costs: a reference line, not judged. What a
user pays for the module's size is in W1 (bench/workers.py): Envoy's V8 compiles all of its code
before Envoy is LIVE.

The shipped module is stripped, so the per-crate table comes from the same build with symbol
names kept (profile `wasm-names`: release with `strip = false`, defined on the cargo command line
so Cargo.toml stays as is). twiggy lists every function and data segment with its size; each is
attributed to the crate its demangled path starts with (for `<T as Trait>::f`, the crate of `T`;
generic code instantiated for another crate's types counts for the crate that defines it). The
name section itself is left out, so the table adds up to about the stripped size.
"""
import collections
import json
import os
import re
import shutil
import subprocess

from stack import REPO

PROFILE = "wasm-names"
# The same build as the Makefile's `wasm` target (its own core/std, panic=immediate-abort).
TARGET_DIR = REPO / "target" / "wasm-std"
NAMED = TARGET_DIR / "wasm32-wasip1" / PROFILE / "auth0_filter.wasm"


def build_named():
    env = dict(os.environ, RUSTC_BOOTSTRAP="1", CARGO_TARGET_DIR=str(TARGET_DIR),
               RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort")
    subprocess.run(["nice", "-n", "10", "cargo", "build", "--quiet", "--profile", PROFILE,
                    "-Zbuild-std=std,panic_abort",
                    "--target", "wasm32-wasip1", "-p", "auth0-filter",
                    "--config", f'profile.{PROFILE}.inherits="release"',
                    "--config", f"profile.{PROFILE}.strip=false"], check=True, cwd=REPO,
                   env=env)


def crate_of(name):
    if name.startswith("data segment") or re.fullmatch(r"data\[\d+\]", name):
        return "(data segments: constants, strings)"
    if re.fullmatch(r"(code|elem|table|type|import|export|global|func)\[\d+\].*", name):
        return "(unnamed: " + name.split("[")[0] + ")"
    # `<u64 as itoa::Unsigned>::fmt`: a primitive's impl counts for the trait's crate;
    # `<str>::to_uppercase` (an inherent primitive method) for core.
    primitive = re.match(r"<&?(?:mut )?\[?([a-z0-9]+)\]?(?: as ([^>]+))?>", name)
    if primitive and "::" not in primitive.group(1):
        name = primitive.group(2) or "core::"
    path = name.lstrip("<&*[( ")
    for prefix in ("mut ", "dyn ", "const ", "unsafe ", "impl "):
        path = path.removeprefix(prefix).lstrip("<&*[( ")
    if "::" not in path:
        return "(runtime: libc, allocator, wasm glue)"
    crate = re.sub(r"\[[0-9a-f]+\]$", "", path.split("::", 1)[0])  # core[9f8d…] -> core
    return crate if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", crate) else "(other)"


def module_size(wasm):
    size = os.path.getsize(wasm)
    figure = {"name": "P3 module size, release .wasm (bytes)", "kind": "bytes", "bytes": size,
              "median": size, "target": None, "met": None, "crates": []}
    twiggy = shutil.which("twiggy") or str(os.path.expanduser("~/.cargo/bin/twiggy"))
    build_named()
    out = subprocess.run([twiggy, "top", "-n", "1000000", "-f", "json", str(NAMED)],
                         check=True, capture_output=True, text=True).stdout
    per_crate = collections.Counter()
    for item in json.loads(out):
        name = item["name"]
        if name.startswith("custom section") or name.endswith("subsection"):
            continue
        per_crate[crate_of(name)] += item["shallow_size"]
    figure["named_build_bytes"] = os.path.getsize(NAMED)
    figure["crates"] = [{"crate": crate, "bytes": bytes_}
                        for crate, bytes_ in per_crate.most_common()]
    return figure


def crate_table(figure, rows=20):
    total = sum(c["bytes"] for c in figure["crates"]) or 1
    lines = [f"P3 per crate (code + data of the named build, {total} bytes):"]
    for c in figure["crates"][:rows]:
        lines.append(f"  {c['crate']:<44} {c['bytes']:>9} {100 * c['bytes'] / total:5.1f}%")
    rest = figure["crates"][rows:]
    if rest:
        lines.append(f"  {'(' + str(len(rest)) + ' more)':<44} {sum(c['bytes'] for c in rest):>9}")
    return "\n".join(lines)
