"""R of `make bench`: the Redis session store through Webdis against shared data, and what one
Redis behind one Webdis answers here.

R1-R3 run two shipped Envoys side by side (`bench.together`), one keeping sessions in shared
data, the other in a redis-server behind Webdis (`auth0-stack up --store redis`, configured as
the integration tests and docs/sessions.md configure them), each loaded with the same request:
a website login (one session write), /userinfo with a sid and a protected request with a sid
(one session read each). Each figure is the rps ratio Redis / shared, with both rates, each
Envoy's CPU per request and Webdis' and Redis's CPU per request of the Redis side.

R4-R6 load Webdis (and Redis) directly, with the filter's own command shapes
(crates/core/src/store/redis.rs: `POST /`, basic auth, `CMD/arg/...` with every argument
percent-encoded): a session read, a login's four session writes in turn, and Redis alone
(redis-benchmark, no Webdis). docs/scaling.md builds its capacity model on these.
"""
import base64
import http.client
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess

from stack import APP_LOGIN, OUT, TWO_CORES, WRK_CPU, cpu_seconds, lua_script, wrk
from stack import http as request

FORM = "application/x-www-form-urlencoded"
# What the harness (tests/harness/redis.rs) gives Webdis and Redis.
WEBDIS_USER, WEBDIS_PASSWORD = "gw", "webdis-secret"
KEY_PREFIX = "auth0-stack:"
CONNECTIONS, LOGIN_CONNECTIONS = 16, 8
# The wrk core (core 1 on a 2-core machine): Redis and Webdis share it with the load generator
# while the Envoys are compared, so their CPU never lands on the core the two Envoys share.
STORE_CPUS = {1} if TWO_CORES else None


def encode(arg):
    """An argument as the filter sends it: every byte but ASCII letters and digits %-encoded
    (percent_encoding's NON_ALPHANUMERIC)."""
    return "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else f"%{b:02X}"
                   for b in arg.encode())


def command(*args):
    return "/".join(encode(str(a)) for a in args)


def webdis_headers():
    credentials = base64.b64encode(f"{WEBDIS_USER}:{WEBDIS_PASSWORD}".encode()).decode()
    return {"Content-Type": "text/plain", "Authorization": f"Basic {credentials}"}


def webdis_call(port, *args):
    """One call as the filter makes it; the reply (Webdis' `{"CMD": reply}`), or raises.
    Not through urllib: its `Connection: close` leaves some of Webdis 0.1.9's answers
    unsent (Envoy keeps its connections open)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/", command(*args).encode(), webdis_headers())
        answer = connection.getresponse()
        status, body = answer.status, answer.read()
    finally:
        connection.close()
    reply = json.loads(body).get(args[0]) if status == 200 else None
    if status != 200 or (isinstance(reply, list) and reply[:1] == [False]):
        raise RuntimeError(f"Webdis {args[0]}: {status} {body[:200]!r}")
    return reply


def pin(pid, cpus):
    """Every thread of `pid` on `cpus` (None: all of them)."""
    cpus = cpus or set(range(os.cpu_count() or 1))
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def with_store_cpu(pids, run):
    """`run`, also reporting the CPU time per request of `pids` (Webdis, Redis)."""
    def measured():
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result = run()
        for name, pid in pids.items():
            spent = cpu_seconds(pid) - before[name]
            result[f"{name}_cpu_us"] = spent / max(result["requests"], 1) * 1e6
        return result
    return measured


def login(port):
    """A website login through the Envoy on `port`: its sid."""
    status, headers, body = request("POST", f"http://127.0.0.1:{port}/oauth/token",
                                    {"Content-Type": FORM, "secret": "website-api-key"},
                                    APP_LOGIN.encode())
    cookie = headers.get("set-cookie", "")
    if status != 200 or not cookie.startswith("sid="):
        raise RuntimeError(f"website login failed: {status} {body[:200]!r}")
    return cookie.split(";", 1)[0].split("=", 1)[1]


def store_figure(name, runs):
    """R1-R3: the rps ratio Redis / shared of side-by-side runs, with what each side cost."""
    ratios = [b["rps"] / a["rps"] for a, b in runs]
    figure = {"name": name, "kind": "store_ratio", **summary(ratios), "target": None,
              "met": None,
              "raw_rps": [[a["rps"], b["rps"]] for a, b in runs],
              "rps": {"shared": summary([a["rps"] for a, _ in runs]),
                      "redis": summary([b["rps"] for _, b in runs])},
              "cpu_us_per_request": [[round(a["cpu_us"], 1), round(b["cpu_us"], 1)]
                                     for a, b in runs],
              "store_cpu_us_per_request": [round(b["webdis_cpu_us"] + b["redis_cpu_us"], 1)
                                           for _, b in runs],
              # What the Webdis calls add to the Envoy (all its threads), and what Webdis and
              # Redis spend, per request.
              "envoy_cpu_added_us": summary([b["cpu_us"] - a["cpu_us"] for a, b in runs]),
              "store_cpu_us": summary([b["webdis_cpu_us"] + b["redis_cpu_us"]
                                       for _, b in runs]),
              "non2xx": sum(a["non2xx"] + b["non2xx"] for a, b in runs),
              "errors": [e for a, b in runs for e in (a["errors"], b["errors"]) if e]}
    print(f"  {name}: {figure['median']:.3f} {figure['raw_rps']}", flush=True)
    return figure


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ops_figure(name, runs, ops_per_run=1, **extra):
    """R4-R6: operations per second, with the store's CPU per operation."""
    rates = [r["rps"] * ops_per_run for r in runs]
    figure = {"name": name, "kind": "ops", **summary(rates), "target": None, "met": None,
              "runs": [round(r, 1) for r in rates], **extra}
    for part in ("webdis", "redis"):
        spent = [r[f"{part}_cpu_us"] / ops_per_run for r in runs if f"{part}_cpu_us" in r]
        if spent:
            figure[f"{part}_cpu_us_per_op"] = round(statistics.median(spent), 1)
    figure["non2xx"] = sum(r.get("non2xx", 0) for r in runs)
    figure["errors"] = [r["errors"] for r in runs if r.get("errors")]
    print(f"  {name}: {figure['median']:.0f} ops/s", flush=True)
    return figure


# A login's session write (crates/core/src/store/redis.rs, `StoreOp::Put`), one command per
# request in turn, each cycle on a new key; a separate prefix keeps the Envoy's index apart.
WRITE_CYCLE_LUA = """
local n = 0
local record = {record}
local active = {active}
local prefix = {prefix}
function request()
  local step = n % 4
  local i = math.floor(n / 4)
  local now = os.time()
  n = n + 1
  local body
  if step == 0 then
    body = "SETEX/" .. prefix .. i .. "/60/" .. record
  elseif step == 1 then
    body = "ZADD/" .. active .. "/" .. (now + 60) .. "/bench" .. i .. "%20user"
  elseif step == 2 then
    body = "ZREMRANGEBYSCORE/" .. active .. "/%2Dinf/" .. now
  else
    body = "EXPIRE/" .. active .. "/60"
  end
  return wrk.format(nil, nil, nil, body)
end
"""


def redis_benchmark(config, key, requests):
    """Redis alone: redis-benchmark sending `GET key` (16 clients) straight to Redis, from the
    wrk core; {"rps", "requests"}."""
    argv = [*WRK_CPU, "redis-benchmark", "-h", "127.0.0.1", "-p", str(config["redis_port"]),
            "-a", config["redis_auth"], "-c", str(CONNECTIONS), "-n", str(requests), "--csv",
            "GET", key]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120).stdout
    match = re.search(r'^"GET[^"]*","([\d.]+)"', out, re.MULTILINE)
    if not match:
        raise RuntimeError(f"redis-benchmark: no GET rate in {out!r}")
    return {"rps": float(match.group(1)), "requests": requests}


def measure(stack, args, together, with_cpu):
    """R1-R6."""
    seconds, pairs = args.seconds, args.pairs
    shared_envoy, shared, _ = stack.envoy("redis-path-shared")
    redis_envoy, redis, _ = stack.envoy("redis-path-redis", store="redis")
    webdis = redis_envoy.up["webdis"]
    store_pids = {name: redis_envoy.up["pids"][name] for name in ("webdis", "redis")}
    config = json.loads((pathlib.Path(redis_envoy.up["dir"]) / "redis" / "webdis.json")
                        .read_text())

    def load(port, path, script, connections=CONNECTIONS, length=seconds):
        return lambda: wrk(f"http://127.0.0.1:{port}{path}", length, connections, script)

    def pair(path, shared_script, redis_script, connections=CONNECTIONS):
        runs = together(pairs, with_cpu(shared_envoy.pid,
                                        load(shared, path, shared_script, connections)),
                        with_cpu(redis_envoy.pid, with_store_cpu(
                            store_pids, load(redis, path, redis_script, connections))))
        return runs

    def warm(path, shared_script, redis_script, connections=CONNECTIONS):
        length = max(1, seconds // 2)
        together(1, load(shared, path, shared_script, connections, length),
                 load(redis, path, redis_script, connections, length))

    for pid in store_pids.values():
        pin(pid, STORE_CPUS)
    sids = {"shared": login(shared), "redis": login(redis)}
    figures = []
    logins = lua_script(OUT / "redis-path-login.lua", "POST", APP_LOGIN,
                        {"Content-Type": FORM, "secret": "website-api-key"})
    warm("/oauth/token", logins, logins, LOGIN_CONNECTIONS)
    figures.append(store_figure(
        "R1 website-login rps ratio, Redis through Webdis / shared data",
        pair("/oauth/token", logins, logins, LOGIN_CONNECTIONS)))
    for number, path, what, accept in (
            ("R2", "/userinfo", "/userinfo", None),
            ("R3", "/protected/x", "protected request", "application/json")):
        scripts = {}
        for side, sid in sids.items():
            headers = {"Cookie": f"sid={sid}"}
            if accept:
                headers["Accept"] = accept
            scripts[side] = lua_script(OUT / f"redis-path-{number}-{side}.lua", headers=headers)
        warm(path, scripts["shared"], scripts["redis"])
        figures.append(store_figure(
            f"{number} {what} with a sid, rps ratio, Redis through Webdis / shared data",
            pair(path, scripts["shared"], scripts["redis"])))

    # Webdis itself, with both cores (the Envoys are idle now) but wrk's.
    for pid in store_pids.values():
        pin(pid, None)
    figures += measure_webdis(webdis, store_pids, config, sids["redis"], args)
    return figures


def measure_webdis(webdis, store_pids, config, sid, args):
    """R4-R6: one Webdis (2 threads, as the harness runs it) and its Redis, loaded directly."""
    import hashlib

    seconds, pairs = args.seconds, args.pairs
    key = f"{KEY_PREFIX}s:{hashlib.sha256(sid.encode()).hexdigest()}"
    record = webdis_call(webdis, "GET", key)
    if not isinstance(record, str):
        raise RuntimeError(f"no session under {key} in Redis")
    # Each shape once, checked: Webdis and Redis accept it as the filter sends it.
    probe = f"{KEY_PREFIX}bench:s:probe"
    webdis_call(webdis, "SETEX", probe, 60, record)
    webdis_call(webdis, "ZADD", f"{KEY_PREFIX}bench:active", 2**40, "probe user")
    webdis_call(webdis, "ZREMRANGEBYSCORE", f"{KEY_PREFIX}bench:active", "-inf", 1)
    webdis_call(webdis, "EXPIRE", f"{KEY_PREFIX}bench:active", 60)
    url = f"http://127.0.0.1:{webdis}/"
    read = lua_script(OUT / "webdis-get.lua", "POST", command("GET", key), webdis_headers())
    write = lua_script(OUT / "webdis-write.lua", "POST", "", webdis_headers(),
                       WRITE_CYCLE_LUA.format(
                           record=json.dumps(encode(record)),
                           active=json.dumps(encode(f"{KEY_PREFIX}bench:active")),
                           prefix=json.dumps(encode(f"{KEY_PREFIX}bench:s:"))))
    run = lambda script: with_store_cpu(  # noqa: E731
        store_pids, lambda: wrk(url, seconds, CONNECTIONS, script))()
    run(read)  # warm-up: Webdis' connections to Redis, the allocators
    reads, writes = [], []
    for _ in range(pairs):
        reads.append(run(read))
        writes.append(run(write))
    figures = [
        ops_figure("R4 Webdis ops/s, a session read (GET, as every sid request sends)", reads,
                   record_bytes=len(record)),
        ops_figure("R5 Webdis ops/s, a login's session write (SETEX ZADD ZREMRANGEBYSCORE "
                   "EXPIRE in turn)", writes),
    ]
    figures[-1]["logins_per_second"] = round(figures[-1]["median"] / 4, 1)
    requests = 20_000 if args.smoke else 300_000
    alone = [with_store_cpu({"redis": store_pids["redis"]},
                            lambda: redis_benchmark(config, key, requests))()
             for _ in range(pairs)] if shutil.which("redis-benchmark") else [None]
    if alone[0] is None:
        print("  skipped: R6 Redis alone (no redis-benchmark)", flush=True)
    else:
        figures.append(ops_figure("R6 Redis alone ops/s, redis-benchmark GET (no Webdis)",
                                  alone))
    return figures
