#!/usr/bin/env python3
"""`make bench`: the filter's cost as ratios measured side by side in one run (real Envoy 1.40
with one worker, the release .wasm, the Auth0 emulator and an echo upstream on loopback, load
from wrk). P1, P5 and the native anchors (bench/anchors.py) run each pair's A and B side by side
on one core, P2 alternates A B A B; each figure is the median of the per-pair figures, with the
min/max as its spread and the raw requests/s. W1 and W2 (bench/workers.py) start Envoys of their
own at several worker counts. Prints one table and writes target/bench/latest.json.
docs/performance.md describes the figures.

Usage: bench.py [--smoke] [--pass-through-only | --anchors-only | --workers-only | --redis-only]
                [--sessions N]
(--smoke: same code paths in seconds, no target is judged)
"""
import argparse
import datetime
import json
import signal
import statistics
import subprocess
import sys
import threading
import time

import anchors
import protected
import redis_path
import shapes
import sizes
import workers
from stack import (APP_LOGIN, OUT, WASM, Stack, cpu_seconds, http, lua_script,
                   rss_mb, wrk)

# The direct baseline of P2: the form the filter itself sends Auth0 for the `app` client's
# password login (docs/routes.md, "POST /oauth/token"), so the emulator does the same work for both.
AUTH0_LOGIN = (
    "grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fpassword-realm&username=alice"
    "&password=Alice-Passw0rd%21&realm=Username-Password-Authentication&client_id=app-client-id"
    "&client_secret=app-client-secret-0123456789&audience=https%3A%2F%2Fapi.example.org"
    "&scope=openid+offline_access+profile+email"
)
FORM = "application/x-www-form-urlencoded"

# A website login per response until each wrk thread has `limit` successes; each thread then
# says so on stderr so bench.py can end wrk (which otherwise runs its whole duration).
FILL_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0; limit = tonumber(args[1]); said = false end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
  if ok >= limit and not said then
    said = true
    io.stderr:write("THREAD_DONE\\n"); io.stderr:flush()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local o, b = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad") end
  io.write(string.format("FILL ok=%d bad=%d\\n", o, b))
end
"""


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def alternate(pairs, run_a, run_b):
    """Runs A then B `pairs` times; returns the raw runs."""
    runs = []
    for _ in range(pairs):
        runs.append((run_a(), run_b()))
    return runs


def together(pairs, run_a, run_b):
    """Runs A and B at the same time `pairs` times (started in alternating order); returns the
    raw runs. Every Envoy is pinned to the same core, so each pair's two Envoys share it, and
    whatever else the machine does meanwhile (this VM's CPU steal moved a lone Envoy's rate
    between 7k and 20k rps within one run) slows both alike: the spread of B/A shrinks from
    about 0.5..1.1 (A then B) to a few per cent. The emulator is not shared this way: P2,
    whose bottleneck it is, keeps A then B."""
    runs = []
    for i in range(pairs):
        out, failures = {}, []

        def job(key, run):
            try:
                out[key] = run()
            except Exception as error:  # re-raised below, in the bench's own thread
                failures.append(error)

        jobs = [("a", run_a), ("b", run_b)]
        threads = [threading.Thread(target=job, args=pair)
                   for pair in (jobs if i % 2 == 0 else jobs[::-1])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        runs.append((out["a"], out["b"]))
    return runs


def with_cpu(pid, run):
    """`run`, also reporting the Envoy's CPU time per request (all its threads)."""
    def measured():
        before = cpu_seconds(pid)
        result = run()
        result["cpu_us"] = (cpu_seconds(pid) - before) / max(result["requests"], 1) * 1e6
        return result
    return measured


def raw_fields(runs):
    """What every figure keeps of its pairs: raw rps, non-2xx answers, wrk's socket errors."""
    return {"raw_rps": [[a["rps"], b["rps"]] for a, b in runs],
            "non2xx": sum(a["non2xx"] + b["non2xx"] for a, b in runs),
            "errors": [e for a, b in runs for e in (a["errors"], b["errors"]) if e]}


def ratio_figure(name, runs, target, higher_is_better=True):
    """A ratio B/A judged against `target`; `target=None`: a reference, not judged."""
    ratios = [b["rps"] / a["rps"] for a, b in runs]
    figure = {"name": name, "kind": "ratio", **summary(ratios), "target": target,
              **raw_fields(runs)}
    if target is None:
        figure["met"] = None
    else:
        figure["met"] = (figure["median"] >= target if higher_is_better
                         else figure["median"] <= target)
    print(f"  {name}: {figure['median']:.3f} {figure['raw_rps']}", flush=True)
    return figure


def measure_throughput(stack, args):
    seconds, pairs, conns = args.seconds, args.pairs, 16
    _, shipped, _ = stack.envoy("shipped")
    _, bare, _ = stack.envoy("bare", render=lambda listen, admin: shapes.straight_to_auth0(
        shapes.without_wasm(stack.shipped_config(listen, admin))))
    get = lambda port, path, script=None: lambda: wrk(  # noqa: E731
        f"http://127.0.0.1:{port}{path}", seconds, conns, script)
    figures = shapes.measure_pass_through(stack, args, together, ratio_figure,
                                         sys.modules[__name__])
    warm = lambda port, path, script=None: wrk(  # noqa: E731
        f"http://127.0.0.1:{port}{path}", max(1, seconds // 2), conns, script)


    # P2: password login through the filter vs the same login proxied straight to the emulator.
    via_filter = lua_script(OUT / "login-filter.lua", "POST", APP_LOGIN,
                            {"Content-Type": FORM, "secret": "app-api-key"})
    direct = lua_script(OUT / "login-direct.lua", "POST", AUTH0_LOGIN, {"Content-Type": FORM})
    login_conns = 8
    runs = alternate(pairs,
                     lambda: wrk(f"http://127.0.0.1:{bare}/oauth/token", seconds, login_conns,
                                 direct),
                     lambda: wrk(f"http://127.0.0.1:{shipped}/oauth/token", seconds,
                                 login_conns, via_filter))
    figures.append(ratio_figure(
        "P2 password-login rps ratio, through the filter / Envoy straight to the emulator",
        runs, 0.85))
    ceiling = [wrk(f"http://127.0.0.1:{stack.auth0_port}/oauth/token", seconds, login_conns,
                   direct)["rps"] for _ in range(pairs)]
    figures[-1]["emulator_ceiling_rps"] = summary(ceiling)

    # P5: repeat verification of one Bearer token on a protected route vs the same request on
    # a route where the filter is on the chain but verifies nothing, side by side in two
    # Envoys: B answers the protected route (the token's session is in its store), A the other.
    # The cost is each Envoy's CPU time per request (all threads), B - A.
    envoy_a, shipped_a, _ = stack.envoy("p5-pass-through")
    envoy_b, shipped_b, _ = stack.envoy("p5-protected")
    token = protected.login(shipped_b)
    bearer = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    plain = lua_script(OUT / "bearer.lua", headers=bearer)
    warm(shipped_a, "/through-filter/x", plain)
    warm(shipped_b, "/protected/x", plain)
    runs = together(pairs, with_cpu(envoy_a.pid, get(shipped_a, "/through-filter/x", plain)),
                    with_cpu(envoy_b.pid, get(shipped_b, "/protected/x", plain)))
    added = [b["cpu_us"] - a["cpu_us"] for a, b in runs]
    figures.append({"name": "P5 token-verification CPU cost, protected - pass-through route "
                            "(us/request)",
                    "kind": "us_added", **summary(added), "target": 20.0,
                    "met": statistics.median(added) <= 20.0, **raw_fields(runs),
                    "cpu_us_per_request": [[round(a["cpu_us"], 1), round(b["cpu_us"], 1)]
                                           for a, b in runs],
                    "ratio": summary([b["rps"] / a["rps"] for a, b in runs])})
    print(f"  P5: {statistics.median(added):.1f} us {figures[-1]['cpu_us_per_request']}",
          flush=True)
    figures += anchors.measure(stack, args, sys.modules[__name__], figures)
    p2 = next(f for f in figures if f["name"].startswith("P2"))
    login_rps = statistics.median(b for _, b in p2["raw_rps"])
    return figures, login_rps


def fill_sessions(port, sessions, seconds_limit):
    """`sessions` website logins through the filter with wrk; returns (ok, bad, seconds)."""
    script = lua_script(OUT / "fill.lua", "POST", APP_LOGIN,
                        {"Content-Type": FORM, "secret": "website-api-key"}, FILL_LUA)
    threads = 2
    argv = ["wrk", f"-t{threads}", "-c16", f"-d{seconds_limit}s", "--timeout", "10s", "-s",
            str(script), f"http://127.0.0.1:{port}/oauth/token", "--",
            str(-(-sessions // threads))]
    start = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             restore_signals=True)
    try:
        finished = 0
        for line in child.stderr:
            if "THREAD_DONE" in line:
                finished += 1
                if finished == threads:
                    child.send_signal(signal.SIGINT)  # wrk then prints its summary
                    break
        out, _ = child.communicate(timeout=seconds_limit + 60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    elapsed = time.monotonic() - start
    line = next((l for l in out.splitlines() if l.startswith("FILL ")), "FILL ok=0 bad=0")
    counts = dict(part.split("=") for part in line.split()[1:])
    return int(counts["ok"]), int(counts["bad"]), elapsed


def allocated_mb(admin):
    """Bytes in use by Envoy's allocator (tcmalloc), from the admin `/memory` endpoint."""
    _, _, body = http("GET", f"http://127.0.0.1:{admin}/memory")
    return round(int(json.loads(body)["allocated"]) / 1e6, 1)


# P4's sweep pass. Each pass reads every slot on the one worker that also serves the logins, so
# a pass every second over 100k sessions would slow the fill it measures; a pass every 5 s
# still empties the slots within seconds of the last expiry.
SWEEP_SECS = 5


def measure_memory(stack, sessions, login_rps, margin_secs, release_wait_secs):
    """P4: Envoy RSS with `sessions` live sessions vs none, and after they expire."""
    fill_estimate = sessions / max(login_rps, 1.0)
    lifetime = int(fill_estimate * 1.5) + margin_secs
    print(f"  P4: filling {sessions} sessions (estimate {fill_estimate:.0f} s, session lifetime "
          f"{lifetime} s)", flush=True)
    child, port, admin = stack.envoy("memory", overrides={"sessionDurationSeconds": lifetime,
                                                          "sweepIntervalSeconds": SWEEP_SECS})
    for _ in range(20):  # warm-up: the same paths, so the baseline includes their allocations
        http("POST", f"http://127.0.0.1:{port}/oauth/token",
             {"Content-Type": FORM, "secret": "website-api-key"}, APP_LOGIN.encode())
    time.sleep(1)
    baseline = rss_mb(child.pid)
    allocated = [allocated_mb(admin)]
    fill_start = time.monotonic()
    ok, bad, elapsed = fill_sessions(port, sessions, int(fill_estimate * 4) + 120)
    live = rss_mb(child.pid)
    allocated.append(allocated_mb(admin))
    # Each session lives `lifetime` from its own login: the last ones logged in as the fill
    # ended. Then one full sweep pass.
    expire_at = fill_start + elapsed + lifetime + SWEEP_SECS + 3
    while time.monotonic() < expire_at:
        time.sleep(1)
    samples = []
    for _ in range(5):
        time.sleep(1)
        samples.append(rss_mb(child.pid))
    after = samples[-1]
    allocated.append(allocated_mb(admin))
    # Then the allocator's background release (the template's `memory_allocator_manager`)
    # hands the freed pages back, a few MB at a time as its record of recent demand ages:
    # RSS every 10 s until it is near the baseline again or `release_wait_secs` have passed.
    near = baseline + max((live - baseline) / 4, 1.0)
    released, waited = after, 0
    while released > near and waited < release_wait_secs:
        time.sleep(10)
        waited += 10
        released = rss_mb(child.pid)
    return {"name": "P4 memory added by live sessions, Envoy RSS with - without (MB)",
            "kind": "mb_added",
            "sessions": ok, "failed_logins": bad, "fill_seconds": round(elapsed, 1),
            "session_lifetime_seconds": lifetime, "all_live_at_sample": elapsed < lifetime,
            "baseline_rss_mb": round(baseline, 1), "live_rss_mb": round(live, 1),
            "after_expiry_rss_mb": round(after, 1), "median": round(live - baseline, 1),
            "after_expiry_added_mb": round(after - baseline, 1),
            "released_rss_mb": round(released, 1),
            "released_added_mb": round(released - baseline, 1),
            "released_after_seconds": waited, "target": 80.0,
            # What Envoy's allocator says is in use (admin /memory `allocated`): none, live,
            # expired. RSS also counts pages the allocator freed but keeps.
            "allocated_mb": allocated,
            "added_per_100k_mb": round((live - baseline) * 100_000 / max(ok, 1), 1),
            # Met: at most +80 MB scaled to 100k sessions, and back near the baseline (within
            # a quarter of what the sessions added) once they expired, were swept and the
            # allocator released what they had used.
            "met": (live - baseline) * 100_000 / max(ok, 1) <= 80.0 and released <= near}


def fmt_row(f, width=62):
    if f["kind"] == "ratio":
        value = f"{f['median']:.3f}"
        spread = f"{f['min']:.3f}..{f['max']:.3f}"
        target = "(ref)" if f["target"] is None else f">= {f['target']}"
        raw = " ".join(f"{a:.0f}/{b:.0f}" for a, b in f["raw_rps"])
    elif f["kind"] == "us_added":
        value = f"{f['median']:.1f}"
        spread = f"{f['min']:.1f}..{f['max']:.1f}"
        target = "(ref)" if f["target"] is None else f"<= {f['target']}"
        raw = (f"rps ratio {f['ratio']['median']:.3f}, " if f.get("ratio") else "") + \
            "CPU us/request " + " ".join(f"{a:.0f}/{b:.0f}" for a, b in f["cpu_us_per_request"])
    elif f["kind"] == "cpu_ratio":
        value = f"{f['median']:.3f}"
        spread = f"{f['min']:.3f}..{f['max']:.3f}"
        target = f"<= {f['target']}"
        raw = (f"rps ratio {f['ratio']['median']:.3f}, CPU us/request "
               + " ".join(f"{a:.0f}/{b:.0f}" for a, b in f["cpu_us_per_request"]))
    elif f["kind"] == "mb_added":
        value = f"{f['median']:+.1f}"
        spread = f"released {f['released_added_mb']:+.1f}"
        target = f"<= +{f['target']:.0f}"
        raw = (f"RSS {f['baseline_rss_mb']}/{f['live_rss_mb']}/{f['after_expiry_rss_mb']}/"
               f"{f['released_rss_mb']} MB (none/live/expired/{f['released_after_seconds']} s "
               f"later), allocated "
               f"{'/'.join(str(a) for a in f['allocated_mb'])} MB, {f['sessions']} sessions, "
               f"{f['added_per_100k_mb']:+.0f} MB per 100k")
    elif f["kind"] in ("ms_to_live", "mb_per_worker"):
        value, spread, target, raw = workers.fmt_row(f)
    elif f["kind"] == "store_ratio":
        value = f"{f['median']:.3f}"
        spread = f"{f['min']:.3f}..{f['max']:.3f}"
        target = "(ref)"
        raw = (" ".join(f"{a:.0f}/{b:.0f}" for a, b in f["raw_rps"]) + "; Envoy CPU us/request "
               + " ".join(f"{a:.0f}/{b:.0f}" for a, b in f["cpu_us_per_request"])
               + "; Webdis+Redis us/request "
               + " ".join(f"{s:.0f}" for s in f["store_cpu_us_per_request"]))
    elif f["kind"] == "ops":
        value = f"{f['median']:.0f}"
        spread = f"{f['min']:.0f}..{f['max']:.0f}"
        target = "(ref)"
        raw = "ops/s " + " ".join(f"{r:.0f}" for r in f["runs"]) + "".join(
            f"; {part} CPU {f[part + '_cpu_us_per_op']} us/op" for part in ("webdis", "redis")
            if part + "_cpu_us_per_op" in f)
    else:  # bytes
        value = f"{f['bytes']}"
        spread = ""
        target = "(ref)" if f["target"] is None else f"<= {f['target']}"
        raw = ""
    verdict = "" if f["met"] is None else "OK" if f["met"] else "MISS"
    return f"{f['name']:<{width}} {value:>9} {spread:>20} {target:>9} {verdict:>4}  {raw}"


def stop_on_signal(signum, _frame):
    raise SystemExit(f"bench: stopped by signal {signum}")


def main():
    # Stopped (Ctrl-C, kill, a time limit) or not, the `finally` below stops what was started;
    # SIGINT is also re-armed, as shells start background jobs with it ignored.
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--sessions", type=int, help="P4's live sessions (default 100k)")
    parser.add_argument("--pass-through-only", action="store_true",
                        help="only P1, the pass-through cost of each deployment shape")
    parser.add_argument("--anchors-only", action="store_true",
                        help="only the native anchors (bench/anchors.py)")
    parser.add_argument("--workers-only", action="store_true",
                        help="only W1 and W2, time to LIVE and RSS per Envoy worker")
    parser.add_argument("--redis-only", action="store_true",
                        help="only R1-R6, the Redis session store through Webdis")
    args = parser.parse_args()
    args.pairs, args.seconds = (1, 1) if args.smoke else (5, 4)
    sessions = args.sessions or (1_000 if args.smoke else 100_000)
    OUT.mkdir(parents=True, exist_ok=True)
    stack = Stack("bench")
    try:
        stack.upstreams()
        if args.pass_through_only:
            figures = shapes.measure_pass_through(stack, args, together, ratio_figure,
                                                  sys.modules[__name__])
        elif args.anchors_only:
            figures = anchors.measure(stack, args, sys.modules[__name__])
        elif args.workers_only:
            figures = workers.measure(stack, args)
        elif args.redis_only:
            figures = redis_path.measure(stack, args, together, with_cpu)
        else:
            figures, login_rps = measure_throughput(stack, args)
            figures += redis_path.measure(stack, args, together, with_cpu)
            figures.append(measure_memory(stack, sessions, login_rps, 5 if args.smoke else 20,
                                          10 if args.smoke else 600))
            figures += workers.measure(stack, args)
    finally:
        stack.stop()
    only = (args.pass_through_only or args.anchors_only or args.workers_only
            or args.redis_only)
    size = {"crates": []}
    if not (args.anchors_only or args.workers_only or args.redis_only):
        size = sizes.module_size(WASM)
        figures.append(size)
    produced = all(f.get("median") is not None or f.get("bytes") for f in figures)
    if args.smoke and not only:
        memory = next(f for f in figures if f["kind"] == "mb_added")
        produced = produced and memory["sessions"] >= sessions and bool(size["crates"])
    result = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "smoke": args.smoke, "pairs": args.pairs, "seconds_per_run": args.seconds,
              "envoy_workers": 1, "figures": figures}
    name = ("smoke.json" if args.smoke else
            "pass-through.json" if args.pass_through_only else
            "anchors.json" if args.anchors_only else
            "workers.json" if args.workers_only else
            "redis-path.json" if args.redis_only else "latest.json")
    (OUT / name).write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(f["name"]) for f in figures)
    print(f"{'figure':<{width}} {'median':>9} {'spread (min..max)':>20} {'target':>9} {'':>4}  "
          "raw rps per pair (A/B)")
    for f in figures:
        print(fmt_row(f, width))
    if size["crates"]:
        print(sizes.crate_table(size))
    print(f"written: {OUT / name}" + ("  (smoke: targets not judged)" if args.smoke else ""))
    if not produced:
        raise SystemExit("bench: a figure was not produced")


if __name__ == "__main__":
    main()
