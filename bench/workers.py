"""W1 and W2 of `make bench`: what the filter costs an Envoy once per process and once per
worker, against the same rendered configuration (envoy/, flag mode) with the do-nothing module
(bench/noop-filter) and without any Wasm filter.

- W1, time to LIVE: from Envoy's spawn (this process starts it, not auth0-stack, so the start
  is known to the moment) until its admin `/ready` answers 200 `LIVE`. Before LIVE, Envoy's V8
  compiles the whole module with its optimising compiler (proxy-wasm's host turns V8's baseline
  compiler off), then each VM (the main thread's, then one per worker) runs `_initialize`,
  `on_vm_start` and `on_configure`. Judged on Envoy's CPU time until LIVE (every thread, one
  core): the wall time on a shared machine adds whatever else ran on that core.
- W2, Envoy RSS at 1, 2, 4, 8 and 16 workers, after LIVE and a warm-up that reaches every
  worker (a login, a protected request with that login's Bearer token, a pass-through
  request), once it settles. The per-worker increment is the least-squares slope of RSS over
  the worker counts from 4 up; RSS(N) = intercept + slope × N is the model for 16 and 64
  workers, checked against one start at 32.

Each start is one Envoy alone, pinned to the bench's Envoy core (wrk on the other). Module,
worker count and repeat are interleaved so a slow spell on the shared machine falls on all
three configurations alike. docs/performance.md, "Per-worker cost", reads the figures. Stdlib
only.
"""
import http.client as http_client
import json
import statistics
import time

import shapes
from stack import APP_LOGIN, ENVOY_CPUS, NOOP_WASM, OUT, WASM, cpu_seconds, envoy_stats, http, \
    lua_script, rss_mb, wrk

FORM = "application/x-www-form-urlencoded"
# (key, what the figure calls it, module or None for the configuration without the Wasm filter)
MODULES = (("filter", "the filter", WASM), ("noop", "do-nothing Wasm module", NOOP_WASM),
           ("none", "no Wasm filter", None))
MODEL_WORKERS = (16, 64)
LIVE_WITHIN = 120  # seconds; a start on a loaded machine stays far below it


def render_for(stack, wasm):
    """The shipped configuration (flag mode) with `wasm` as its module, or without the Wasm
    filter when `wasm` is None: a `render(listen, admin)` for Stack.spawn_envoy."""
    if wasm is None:
        return lambda listen, admin: shapes.without_wasm(stack.shipped_config(listen, admin))
    return lambda listen, admin: stack.shipped_config(listen, admin, wasm=wasm)


def is_live(admin):
    try:
        connection = http_client.HTTPConnection("127.0.0.1", admin, timeout=1)
        try:
            connection.request("GET", "/ready")
            answer = connection.getresponse()
            return answer.status == 200 and answer.read().strip() == b"LIVE"
        finally:
            connection.close()
    except OSError:
        return False


def wait_live(envoy):
    """Polls `/ready` every 5 ms; returns (seconds since spawn, Envoy's CPU seconds by then)."""
    deadline = envoy.spawned_at + LIVE_WITHIN
    while True:
        if envoy.proc.poll() is not None:
            raise RuntimeError(f"Envoy exited ({envoy.proc.returncode}) before LIVE: {envoy.log}")
        if is_live(envoy.admin):
            return time.monotonic() - envoy.spawned_at, cpu_seconds(envoy.pid)
        if time.monotonic() > deadline:
            raise RuntimeError(f"Envoy not LIVE within {LIVE_WITHIN} s: {envoy.log}")
        time.sleep(0.005)


def connections_per_worker(admin, listen, workers):
    """Connections each worker has accepted on the main listener (Envoy's per-worker stats)."""
    stats = envoy_stats(admin, "downstream_cx_total")
    prefix = f"listener.127.0.0.1_{listen}.worker_"
    return [stats.get(f"{prefix}{i}.downstream_cx_total", 0) for i in range(workers)]


def warm_up(envoy, key, workers, seconds):
    """A login, then wrk on a protected route with its Bearer token until every worker has
    connections of its own, then wrk on a pass-through route: each worker's VM has built what
    it builds lazily (the token's verification, the routes it took). The configurations
    without the filter get the same requests (their upstream answers them)."""
    base = f"http://127.0.0.1:{envoy.listen}"
    status, _, body = http("POST", f"{base}/oauth/token",
                           {"Content-Type": FORM, "secret": "app-api-key"}, APP_LOGIN.encode())
    token = "not-a-token"
    if key == "filter":
        if status != 200:
            raise RuntimeError(f"W2 warm-up login failed: {status} {body[:200]!r}")
        token = json.loads(body)["accessToken"]
    bearer = lua_script(OUT / f"workers-bearer-{key}.lua",
                        headers={"Authorization": f"Bearer {token}",
                                 "Accept": "application/json"})
    # The kernel spreads connections over the workers' sockets by their addresses: with 8
    # connections a worker, one left out is rare, and another round with more reaches it.
    for attempt in (1, 2, 3):
        run = wrk(f"{base}/protected/x", seconds, 8 * workers * attempt, bearer)
        if run["non2xx"] or run["errors"]:
            raise RuntimeError(f"W2 warm-up of {key}: /protected/x {run}")
        reached = connections_per_worker(envoy.admin, envoy.listen, workers)
        if all(reached):
            break
    else:
        raise RuntimeError(f"W2 warm-up of {key}: a worker got no connection {reached}")
    run = wrk(f"{base}/through-filter/x", seconds, 8 * workers)
    if run["non2xx"] or run["errors"]:
        raise RuntimeError(f"W2 warm-up of {key}: /through-filter/x {run}")
    return reached


def settled_rss(pid, wait=1.0, step=0.5, samples=10):
    """RSS once two samples `step` apart differ by less than 0.2 MB (at most `samples`)."""
    time.sleep(wait)
    last = rss_mb(pid)
    for _ in range(samples):
        time.sleep(step)
        now = rss_mb(pid)
        if abs(now - last) < 0.2:
            return now
        last = now
    return last


def allocator(admin):
    """Envoy's allocator (tcmalloc) figures from the admin `/memory`, in MB."""
    _, _, body = http("GET", f"http://127.0.0.1:{admin}/memory")
    return {name: int(value) / 1e6 for name, value in json.loads(body).items()}


def one_start(stack, key, wasm, workers, repeat, warm_seconds):
    """One Envoy: spawned, LIVE, RSS, warmed up, settled RSS, stopped."""
    envoy = stack.spawn_envoy(f"w-{key}-{workers}-{repeat}", render_for(stack, wasm), workers,
                              cpus=ENVOY_CPUS[1] if ENVOY_CPUS else None)
    try:
        live_s, live_cpu = wait_live(envoy)
        live_rss = rss_mb(envoy.pid)
        reached = warm_up(envoy, key, workers, warm_seconds)
        rss = settled_rss(envoy.pid)
        memory = allocator(envoy.admin)
    finally:
        stack.stop_one(envoy)
    print(f"  W {key} {workers} worker(s): LIVE {live_s * 1000:.0f} ms ({live_cpu:.2f} CPU s), "
          f"RSS {live_rss:.1f} MB at LIVE, {rss:.1f} MB warm (allocator: "
          f"{memory['allocated']:.1f} MB allocated, {memory['pageheap_free']:.1f} MB free "
          f"pages kept), connections per worker {reached}", flush=True)
    return {"workers": workers, "live_ms": live_s * 1000, "live_cpu_s": live_cpu,
            "live_rss_mb": live_rss, "rss_mb": rss, "allocated_mb": memory["allocated"],
            "pageheap_free_mb": memory["pageheap_free"]}


def least_squares(points):
    """(intercept, slope) of the least-squares line through (x, y) points."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = (sum((x - mx) * (y - my) for x, y in points)
             / sum((x - mx) ** 2 for x in xs))
    return my - slope * mx, slope


def per_workers(runs, field):
    """{workers: median of `field` over the runs at that worker count}."""
    counts = sorted({r["workers"] for r in runs})
    return {n: statistics.median(r[field] for r in runs if r["workers"] == n) for n in counts}


def by_text(medians, digits=1):
    """JSON-friendly {"workers": value}."""
    return {str(n): round(v, digits) if digits else round(v) for n, v in medians.items()}


def live_figure(key, what, runs, check):
    """W1 of one configuration: Envoy's CPU time from spawn to LIVE, the median over the starts
    at every worker count; its line against workers over those and the check's start; the
    same starts' wall times."""
    starts = runs if check in runs else runs + [check]
    cpu = per_workers(starts, "live_cpu_s")
    intercept, slope = least_squares(list(cpu.items()))
    values = [r["live_cpu_s"] * 1000 for r in runs]
    wall = [r["live_ms"] for r in runs]
    return {"name": f"W1 time to LIVE on one core, {what}: Envoy CPU from spawn to /ready LIVE "
                    "(ms)",
            "kind": "ms_to_live", "module": key, "median": round(statistics.median(values)),
            "min": round(min(values)), "max": round(max(values)),
            "cpu_by_workers_ms": by_text({n: v * 1000 for n, v in cpu.items()}, 0),
            "cpu_per_worker_ms": round(slope * 1000, 1),
            "cpu_model_ms": {str(n): round((intercept + slope * n) * 1000) for n in
                             MODEL_WORKERS},
            # The same starts' wall time, spawn to LIVE: the CPU time plus whatever else ran
            # on the core meanwhile (on this shared VM, from nothing to several times as much).
            "wall_ms": {"median": round(statistics.median(wall)), "min": round(min(wall)),
                        "max": round(max(wall))},
            "wall_by_workers_ms": by_text(per_workers(starts, "live_ms"), 0),
            "raw": [[r["workers"], round(r["live_cpu_s"] * 1000), round(r["live_ms"])]
                    for r in starts],
            "target": None, "met": None}


def rss_figure(key, what, runs, check, fit_from):
    """W2 of one configuration: RSS by workers, the per-worker slope over the counts from
    `fit_from` up, its line's model at 16 and 64 workers and at the check's count."""
    rss = per_workers(runs, "rss_mb")
    fitted = [n for n in rss if n >= fit_from]
    intercept, slope = least_squares([(n, rss[n]) for n in fitted])
    return {
        "name": f"W2 Envoy RSS per worker, {what}, slope over {fitted[0]}..{fitted[-1]} workers "
                "(MB/worker)",
        "kind": "mb_per_worker", "module": key, "median": round(slope, 2),
        "intercept_mb": round(intercept, 1), "fit_workers": fitted,
        "rss_mb": by_text(rss),
        "live_rss_mb": by_text(per_workers(runs, "live_rss_mb")),
        # The allocator's view: what is allocated, and the free pages it keeps mapped (with
        # the filter, what V8 freed after compiling the module, which the first workers'
        # allocations reuse before RSS grows: why the fit starts at 4 workers).
        "allocated_mb": by_text(per_workers(runs, "allocated_mb")),
        "pageheap_free_mb": by_text(per_workers(runs, "pageheap_free_mb")),
        "model_mb": {str(n): round(intercept + slope * n, 1) for n in MODEL_WORKERS},
        "check": {"workers": check["workers"], "rss_mb": round(check["rss_mb"], 1),
                  "model_mb": round(intercept + slope * check["workers"], 1)},
        "raw_rss_mb": [[r["workers"], round(r["rss_mb"], 1)] for r in runs],
        "target": None, "met": None}


# The judged lines; docs/performance.md, "Per-worker cost", says why these bounds.
LIVE_ADDED_MS = 2000.0  # the filter's CPU to LIVE <= the do-nothing module's + this
RSS_SLOPE_ADDED_MB = 0.5  # the filter's MB per worker <= the do-nothing module's + this


def judge(figures):
    live = {f["module"]: f for f in figures if f["kind"] == "ms_to_live"}
    rss = {f["module"]: f for f in figures if f["kind"] == "mb_per_worker"}
    filter_live, filter_rss = live["filter"], rss["filter"]
    filter_live["target"] = round(live["noop"]["median"] + LIVE_ADDED_MS)
    filter_live["target_rule"] = f"do-nothing module + {LIVE_ADDED_MS:g} ms"
    filter_live["met"] = filter_live["median"] <= filter_live["target"]
    filter_rss["target"] = round(rss["noop"]["median"] + RSS_SLOPE_ADDED_MB, 2)
    filter_rss["target_rule"] = f"do-nothing module + {RSS_SLOPE_ADDED_MB:g} MB/worker"
    filter_rss["met"] = filter_rss["median"] <= filter_rss["target"]


def measure(stack, args):
    """W1 and W2: three figures each (the filter, judged; the do-nothing module and no Wasm
    filter, references). Each configuration starts `repeats` times at each worker count, then
    once at `check` workers, which the model predicts (smoke: its last start is the check)."""
    if args.smoke:
        counts, fit_from, check, repeats, warm_seconds = (1, 2), 1, None, 1, 1
    else:
        counts, fit_from, check, repeats, warm_seconds = (1, 2, 4, 8, 16), 4, 32, 2, 2
    runs = {key: [] for key, _, _ in MODULES}
    for repeat in range(repeats):
        for n in counts:
            turn = (repeat + n) % len(MODULES)
            for key, _, wasm in MODULES[turn:] + MODULES[:turn]:
                runs[key].append(one_start(stack, key, wasm, n, repeat, warm_seconds))
    checks = {key: runs[key][-1] if check is None else
              one_start(stack, key, wasm, check, "check", warm_seconds)
              for key, _, wasm in MODULES}
    figures = [live_figure(key, what, runs[key], checks[key]) for key, what, _ in MODULES]
    figures += [rss_figure(key, what, runs[key], checks[key], fit_from)
                for key, what, _ in MODULES]
    judge(figures)
    for f in figures:
        print(f"  {f['name']}: {f['median']}", flush=True)
    return figures


def fmt_row(f):
    """bench.py's table row fields for W1 and W2: (value, spread, target, raw)."""
    target = "(ref)" if f["target"] is None else f"<= {f['target']:g}"
    if f["kind"] == "ms_to_live":
        value = f"{f['median']:.0f}"
        spread = f"{f['min']:.0f}..{f['max']:.0f}"
        wall = f["wall_ms"]
        raw = (f"CPU ms by workers {f['cpu_by_workers_ms']}, {f['cpu_per_worker_ms']:+.0f} "
               f"ms/worker, model {f['cpu_model_ms']}; wall ms {wall['median']} "
               f"({wall['min']}..{wall['max']})")
    else:
        check = f["check"]
        value = f"{f['median']:.2f}"
        spread = f"intercept {f['intercept_mb']:.1f}"
        model = ", ".join(f"{n}: {v} MB" for n, v in f["model_mb"].items())
        raw = (f"RSS MB by workers {f['rss_mb']}; model {f['intercept_mb']} + "
               f"{f['median']:.2f} x N: {model}; at {check['workers']}: model "
               f"{check['model_mb']}, measured {check['rss_mb']}")
    return value, spread, target, raw
