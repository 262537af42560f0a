#!/usr/bin/env python3
"""Writes the figures of the last `make bench` (target/bench/latest.json) into
docs/performance.md, between its `bench-numbers` markers, so the page shows one run's output
and nothing else. `make bench-docs` runs it; `--check` fails when the page differs.

Usage: bench/performance_block.py [--check] [LATEST_JSON]
"""
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "performance.md"
START, END = "<!-- bench-numbers:start -->", "<!-- bench-numbers:end -->"


def verdict(figure):
    if figure.get("met") is None:
        return "reference"
    if figure.get("target_rule"):  # W1, W2: a bound relative to another line of the run
        unit = " ms" if figure["kind"] == "ms_to_live" else " MB/worker"
        return (f"≤ {figure['target_rule']} ({figure['target']:,g}{unit}) "
                f"{'OK' if figure['met'] else 'MISS'}")
    comparison = ("≤" if figure["kind"] in ("us_added", "mb_added", "bytes", "cpu_ratio")
                  else "≥")
    target = figure["target"]
    if figure["kind"] == "bytes":
        target = f"{target:,} bytes"
    elif figure["kind"] == "us_added":
        target = f"{target:g} µs"
    elif figure["kind"] == "mb_added":
        target = f"+{target:g} MB"
    return f"{comparison} {target} {'OK' if figure['met'] else 'MISS'}"


def row(figure):
    kind = figure["kind"]
    if kind == "ratio":
        value, spread = f"{figure['median']:.3f}", f"{figure['min']:.3f}..{figure['max']:.3f}"
    elif kind == "us_added":
        value = f"+{figure['median']:.1f} µs"
        spread = f"{figure['min']:.1f}..{figure['max']:.1f}"
        ratio = figure.get("ratio")
        if isinstance(ratio, dict) and ratio.get("median") is not None:
            spread += f"; rps ratio {ratio['median']:.3f}"
    elif kind == "cpu_ratio":
        value, spread = f"{figure['median']:.3f}", f"{figure['min']:.3f}..{figure['max']:.3f}"
        ratio = figure["ratio"]
        spread += f"; rps ratio {ratio['median']:.3f} ({ratio['min']:.3f}..{ratio['max']:.3f})"
    elif kind == "mb_added":
        value = (f"+{figure['median']:.1f} MB ({figure['baseline_rss_mb']} → "
                 f"{figure['live_rss_mb']} MB, {figure['sessions']} sessions)")
        spread = (f"after expiry and sweep {figure['after_expiry_rss_mb']} MB; "
                  f"{figure['released_after_seconds']} s later {figure['released_rss_mb']} MB "
                  f"(+{figure['released_added_mb']})")
    elif kind == "ms_to_live":
        by = ", ".join(f"{n}: {v:,}" for n, v in figure["cpu_by_workers_ms"].items())
        value = f"{figure['median']:,} ms CPU (wall: median {figure['wall_ms']['median']:,} ms)"
        spread = (f"{figure['min']:,}..{figure['max']:,}; by workers {by}; "
                  f"{figure['cpu_per_worker_ms']:+g} ms/worker")
    elif kind == "mb_per_worker":
        by = ", ".join(f"{n}: {v}" for n, v in figure["rss_mb"].items())
        check = figure["check"]
        value = f"{figure['median']:.2f} MB/worker (RSS MB by workers {by})"
        spread = (f"model {figure['intercept_mb']} + {figure['median']:.2f} × N: "
                  + ", ".join(f"{n} workers {v} MB" for n, v in figure["model_mb"].items())
                  + f"; at {check['workers']}: model {check['model_mb']}, measured "
                  f"{check['rss_mb']} MB")
    elif kind == "store_ratio":
        rps = figure["rps"]
        value = (f"{figure['median']:.3f} ({rps['shared']['median']:,.0f} → "
                 f"{rps['redis']['median']:,.0f} rps)")
        spread = (f"{figure['min']:.3f}..{figure['max']:.3f}; Envoy CPU "
                  f"{figure['envoy_cpu_added_us']['median']:+.0f} µs/request, Webdis + Redis "
                  f"{figure['store_cpu_us']['median']:.0f} µs/request")
    elif kind == "ops":
        value = f"{figure['median']:,.0f} ops/s"
        spread = f"{figure['min']:,.0f}..{figure['max']:,.0f}" + "".join(
            f"; {part.capitalize()} {figure[part + '_cpu_us_per_op']} µs/op"
            for part in ("webdis", "redis") if part + "_cpu_us_per_op" in figure)
    else:
        value, spread = f"{figure['bytes']:,} bytes", ""
    return f"| {figure['name']} | {value} | {spread} | {verdict(figure)} |"


def block(result):
    lines = [
        START,
        f"Figures from one `make bench` run ({result['envoy_workers']} Envoy worker outside W1 "
        "and W2, "
        f"{result['pairs']} side-by-side pairs of {result['seconds_per_run']} s per ratio)",
        "on this project's 2-core VM, written here from `target/bench/latest.json` by",
        "`make bench-docs`.",
        "",
        "| Figure | Median | Spread (min..max) | Target |",
        "|---|---|---|---|",
    ]
    lines += [row(f) for f in result["figures"]]
    size = next((f for f in result["figures"] if f["kind"] == "bytes"), None)
    if size and size.get("crates"):
        total = sum(c["bytes"] for c in size["crates"])
        lines += ["", f"P3 per crate (code and data of the build with names kept, "
                      f"{total:,} bytes, before `wasm-opt`):", "",
                  "| Crate | Bytes |", "|---|---|"]
        crates = size["crates"]
        lines += [f"| {c['crate']} | {c['bytes']:,} |" for c in crates[:14]]
        if crates[14:]:
            rest = sum(c["bytes"] for c in crates[14:])
            lines.append(f"| {len(crates) - 14} more | {rest:,} |")
    lines.append(END)
    return "\n".join(lines)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    latest = pathlib.Path(args[0]) if args else REPO / "target" / "bench" / "latest.json"
    result = json.loads(latest.read_text())
    if result.get("smoke"):
        sys.exit(f"{latest} is a smoke run: its figures judge nothing")
    page = PAGE.read_text()
    before, rest = page.split(START, 1)
    _, after = rest.split(END, 1)
    updated = before + block(result) + after
    if "--check" in sys.argv[1:]:
        if updated != page:
            sys.exit("docs/performance.md does not show target/bench/latest.json: run `make bench-docs`")
        return
    PAGE.write_text(updated)
    print(f"docs/performance.md: the figures of {latest}")


if __name__ == "__main__":
    main()
