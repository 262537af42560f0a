#!/usr/bin/env python3
"""`make soak`: a bounded mixed run (about 100k requests, 64 concurrent users) through Envoy with
the filter: password logins of an API client and of a `website` client, userinfo, refreshes,
user searches (management open to `admin-api-key`) and logouts. Reports counts per request kind
and status, unexpected statuses (must be 0), wasm VM failures from Envoy's /stats (must be 0)
and Envoy's RSS after warm-up and at the end. Writes target/bench/soak.json.

The driver is Python threads, one keep-alive connection and one user's state each, because
every step needs what the previous answer gave (tokens -> refresh -> logout, sid -> logout);
wrk's Lua has per-thread, not per-connection, state. Python's own speed is not the limit here:
logins and refreshes (RSA signing in the emulator) are.

Usage: soak.py [--requests N] [--users N]
"""
import argparse
import collections
import datetime
import http.client
import json
import signal
import threading
import time
import urllib.parse

from stack import APP_LOGIN, OUT, Stack, envoy_stats, rss_mb

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# What each kind must answer; anything else counts as unexpected.
EXPECTED = {"login_app": 200, "login_website": 200, "userinfo": 200, "refresh": 200,
            "users_search": 200, "logout": 302}


class Budget:
    def __init__(self, total):
        self.left = total
        self.lock = threading.Lock()

    def take(self, n):
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= n
            return True


class User(threading.Thread):
    """One simulated user on its own connection, cycling through a session's life."""

    def __init__(self, index, port, budget, counts, lock):
        super().__init__(daemon=True)
        self.index, self.port, self.budget = index, port, budget
        self.counts, self.lock = counts, lock
        self.conn = None
        self.error = None

    def call(self, kind, method, path, headers, body=None):
        for attempt in range(2):  # a keep-alive connection Envoy closed is reopened once
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 1:
                    raise
        with self.lock:
            self.counts[(kind, response.status)] += 1
        return response.status, response, data

    def website_cycle(self):
        headers = {**FORM, "secret": "website-api-key"}
        _, r, _ = self.call("login_website", "POST", "/oauth/token", headers, APP_LOGIN)
        sid = sid_of(r)
        web = {"secret": "website-api-key"}
        self.call("userinfo", "GET", "/userinfo", {**web, "Cookie": f"sid={sid}"})
        _, r, _ = self.call("refresh", "POST", "/refreshtoken",
                            {**web, "Cookie": f"sid={sid}", "Content-Type": "application/json"},
                            "{}")
        sid = sid_of(r) or sid
        self.call("userinfo", "GET", "/userinfo", {**web, "Cookie": f"sid={sid}"})
        self.search()
        self.call("logout", "GET", "/logout?redirect=/bye", {**web, "Cookie": f"sid={sid}"})

    def app_cycle(self):
        app = {"secret": "app-api-key"}
        status, _, data = self.call("login_app", "POST", "/oauth/token", {**FORM, **app},
                                    APP_LOGIN)
        tokens = json.loads(data) if status == 200 else {}
        bearer = {**app, "Authorization": f"Bearer {tokens.get('accessToken', '')}"}
        self.call("userinfo", "GET", "/userinfo", bearer)
        status, _, data = self.call(
            "refresh", "POST", "/oauth/refreshtoken", {**bearer, "Content-Type": "application/json"},
            json.dumps({"refresh_token": tokens.get("refreshToken", "")}))
        if status == 200:
            tokens = json.loads(data)
            bearer["Authorization"] = f"Bearer {tokens.get('accessToken', '')}"
        self.call("userinfo", "GET", "/userinfo", bearer)
        self.search()
        self.call("logout", "GET", "/logout", bearer)

    def search(self):
        query = urllib.parse.urlencode({"email": "alice*", "_l": "10"})
        self.call("users_search", "GET", f"/users?{query}", {"secret": "admin-api-key"})

    def run(self):
        cycle = self.index
        try:
            while self.budget.take(6):
                (self.website_cycle if cycle % 2 else self.app_cycle)()
                cycle += 1
        except Exception as e:  # reported, and fails the soak
            self.error = repr(e)


def sid_of(response):
    for name, value in response.getheaders():
        if name.lower() == "set-cookie" and value.startswith("sid=") and not value.startswith("sid=;"):
            return value[4:].split(";", 1)[0]
    return ""


def stop_on_signal(signum, _frame):
    raise SystemExit(f"soak: stopped by signal {signum}")


def main():
    signal.signal(signal.SIGTERM, stop_on_signal)  # so `finally` stops what was started
    signal.signal(signal.SIGINT, stop_on_signal)
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=64)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    stack = Stack("soak")
    try:
        stack.upstreams()
        envoy, port, admin = stack.envoy(
            "soak", concurrency=2,
            overrides={"managementAccess": {"apiKeys": ["admin-api-key"]}})
        stats_before = envoy_stats(admin)
        counts = collections.Counter()
        lock = threading.Lock()
        budget = Budget(args.requests)
        users = [User(i, port, budget, counts, lock) for i in range(args.users)]
        start = time.monotonic()
        for user in users:
            user.start()
        rss = []
        # Warm-up ends at half the run: by then each worker's verification cache (10k tokens,
        # crates/core/src/jwt) is full, so later growth would be a leak, not a cache filling.
        warm_at = args.requests // 2
        warm_rss = None
        while any(u.is_alive() for u in users):
            time.sleep(2)
            done = args.requests - budget.left
            rss.append([round(time.monotonic() - start, 1), done, round(rss_mb(envoy.pid), 1)])
            if warm_rss is None and done >= warm_at:
                warm_rss = rss[-1][2]
        elapsed = time.monotonic() - start
        end_rss = rss_mb(envoy.pid)
        stats_after = envoy_stats(admin)
    finally:
        stack.stop()
    by_kind = collections.defaultdict(dict)
    for (kind, status), n in sorted(counts.items()):
        by_kind[kind][str(status)] = n
    unexpected = {f"{kind} {status}": n for (kind, status), n in counts.items()
                  if status != EXPECTED[kind]}
    failures = {k: v for k, v in stats_after.items()
                if v and any(w in k for w in ("fail", "crash", "restart", "abort"))}
    created = {k: [stats_before.get(k), v] for k, v in stats_after.items() if k.endswith(".created")}
    errors = [u.error for u in users if u.error]
    total = sum(counts.values())
    result = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "requests": total, "users": args.users, "seconds": round(elapsed, 1),
        "rps": round(total / elapsed, 1), "by_kind_and_status": by_kind,
        "unexpected": unexpected, "driver_errors": errors, "wasm_failure_stats": failures,
        "wasm_vms_created_before_after": created, "wasm_stats_after": stats_after,
        "rss_mb": {"after_warmup": warm_rss, "end": round(end_rss, 1), "samples": rss},
    }
    result["ok"] = not unexpected and not errors and not failures and all(
        a == b for a, b in created.values())
    (OUT / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"soak: {total} requests, {args.users} users, {elapsed:.0f} s ({total / elapsed:.0f}/s)")
    print(f"{'kind':<16} {'status':>6} {'count':>8}")
    for kind, statuses in by_kind.items():
        for status, n in statuses.items():
            mark = "" if int(status) == EXPECTED[kind] else "  UNEXPECTED"
            print(f"{kind:<16} {status:>6} {n:>8}{mark}")
    print(f"unexpected responses: {sum(unexpected.values())}   driver errors: {len(errors)}")
    print(f"wasm failure stats: {failures or 'none'}   VMs created (before, after): {created}")
    print(f"Envoy RSS: {warm_rss} MB after warm-up, {end_rss:.1f} MB at the end")
    print(f"written: {OUT / 'soak.json'}")
    if not result["ok"]:
        raise SystemExit("soak: FAILED")


if __name__ == "__main__":
    main()
