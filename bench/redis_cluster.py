#!/usr/bin/env python3
"""Past one Redis (docs/scaling.md): the filter's sessions in a Redis Cluster of three masters,
reached through Webdis → Envoy's `redis_proxy` (which knows the cluster's slots and follows
its redirections) → the cluster. Webdis talks to one Redis endpoint and does not follow
`MOVED`, so it cannot face a cluster itself.

Starts the three cluster nodes (with the Redis ACL of docs/sessions.md, plus `CLUSTER SLOTS`
for Envoy's discovery), the proxy Envoy, Webdis in front of it, and the shipped Envoy with the
filter whose `sessionStore` reaches that Webdis; runs a website session through it (login,
/userinfo, a protected request, refresh, logout, the logged-out token refused, /users/active);
counts the keys on each node; then loads Webdis with the filter's session read, through the
cluster and, for comparison, straight to one redis-server, one after the other. Stops
everything it started. Not part of `make bench`: on this 2-core machine three masters add no
capacity, so the figures say what the extra hop costs, not what a cluster gains.

Usage: redis_cluster.py [--seconds N] [--runs N]   (after `make build stack-tool`)
"""
import argparse
import hashlib
import json
import socket
import subprocess
import sys
import time

import redis_path
from stack import ENVOY, OUT, Stack, auth0_stack, http, lua_script, wrk

REDIS_PASSWORD = "redis-secret"
# The bench's own user on the nodes, to count their keys (`default`, Webdis', may not).
ADMIN = ("bench-admin", "bench-admin-secret")
ACL = ["resetchannels", "-@all", *[f"+{c.lower()}" for c in
                                   ("GET", "SET", "SETEX", "DEL", "EXPIRE", "ZADD", "ZREM",
                                    "ZRANGEBYSCORE", "ZREMRANGEBYSCORE")], "+cluster|slots"]
PROXY = """\
static_resources:
  listeners:
  - name: redis
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listen} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.redis_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy
          stat_prefix: sessions
          settings: {{ op_timeout: 1s, enable_redirection: true }}
          prefix_routes: {{ catch_all_route: {{ cluster: sessions }} }}
          downstream_auth_passwords: [{{ inline_string: "{password}" }}]
  clusters:
  - name: sessions
    connect_timeout: 1s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: envoy.clusters.redis
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig
        cluster_refresh_rate: 5s
        cluster_refresh_timeout: 3s
    load_assignment:
      cluster_name: sessions
      endpoints:
      - lb_endpoints:
{endpoints}
    typed_extension_protocol_options:
      envoy.filters.network.redis_proxy:
        "@type": type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions
        auth_password: {{ inline_string: "{password}" }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
"""


class Processes:
    """What this script starts itself, stopped in reverse order."""

    def __init__(self, folder):
        self.folder = folder
        self.started = []

    def start(self, name, argv, port):
        log = open(self.folder / f"{name}.log", "wb")
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=self.folder)
        self.started.append((child, log))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited: see {self.folder / name}.log")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return child
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not listen on {port} within 30 s")

    def stop(self):
        for child, log in reversed(self.started):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            log.close()
        self.started = []


def redis_cli(port, *args, user=None):
    login = ["--user", user[0], "--pass", user[1]] if user else ["-a", REDIS_PASSWORD]
    return subprocess.run(["redis-cli", "-p", str(port), *login, "--no-auth-warning",
                           *map(str, args)], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def start_cluster(processes, ports, bus_ports):
    for port, bus in zip(ports, bus_ports):
        node = processes.folder / f"node-{port}"
        node.mkdir(exist_ok=True)
        (node / "nodes.conf").unlink(missing_ok=True)
        processes.start(f"node-{port}", [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node),
            "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf", "--cluster-port", str(bus),
            "--requirepass", REDIS_PASSWORD], port)
    subprocess.run(["redis-cli", "-a", REDIS_PASSWORD, "--no-auth-warning", "--cluster",
                    "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
                   check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 30
    while "cluster_state:ok" not in redis_cli(ports[0], "CLUSTER", "INFO"):
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not come up")
        time.sleep(0.2)
    # The cluster is formed: from now on the nodes' `default` user may only run the filter's
    # commands, and the slot map Envoy's discovery asks for.
    for port in ports:
        redis_cli(port, "ACL", "SETUSER", ADMIN[0], "on", f">{ADMIN[1]}", "~*", "+@all")
        redis_cli(port, "ACL", "SETUSER", "default", *ACL)


def start_webdis(processes, name, port, redis_port):
    config = {"redis_host": "127.0.0.1", "redis_port": redis_port, "redis_auth": REDIS_PASSWORD,
              "http_host": "127.0.0.1", "http_port": port, "threads": 2, "daemonize": False,
              "database": 0, "verbosity": 1, "logfile": str(processes.folder / f"{name}.out"),
              "acl": [{"disabled": ["*"]},
                      {"http_basic_auth": f"{redis_path.WEBDIS_USER}:"
                                          f"{redis_path.WEBDIS_PASSWORD}",
                       "enabled": ["GET", "SET", "SETEX", "DEL", "EXPIRE", "ZADD", "ZREM",
                                   "ZRANGEBYSCORE", "ZREMRANGEBYSCORE"]}]}
    path = processes.folder / f"{name}.json"
    path.write_text(json.dumps(config))
    return processes.start(name, ["webdis", str(path)], port)


def with_store(stack, webdis):
    """A `render` for Stack.envoy: the shipped config, its filter's sessions on `webdis`."""
    def render(listen, admin):
        lines = stack.shipped_config(listen, admin).splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith('{"clients"'):
                config = json.loads(line)
                config["sessionStore"] = {
                    "backend": "redis", "webdisCluster": "webdis", "keyPrefix": "cluster:",
                    "username": redis_path.WEBDIS_USER, "password": redis_path.WEBDIS_PASSWORD}
                indent = line[:len(line) - len(line.lstrip())]
                lines[i] = indent + json.dumps(config)
            if "port_value: 7379 " in line:
                lines[i] = lines[i].replace("port_value: 7379 ", f"port_value: {webdis} ")
        return "\n".join(lines) + "\n"
    return render


def session_walk(port):
    """A website session through the filter; returns what each step answered."""
    base = f"http://127.0.0.1:{port}"
    sid = redis_path.login(port)
    cookie = {"Cookie": f"sid={sid}", "Accept": "application/json"}
    steps = {"login": 200}
    steps["userinfo"] = http("GET", f"{base}/userinfo", cookie)[0]
    steps["protected"] = http("GET", f"{base}/protected/x", cookie)[0]
    status, headers, _ = http("POST", f"{base}/refreshtoken",
                              {**cookie, "secret": "website-api-key"}, b"")
    steps["refresh"] = status
    fresh = headers.get("set-cookie", "").split(";", 1)[0]
    steps["old token after refresh"] = http("GET", f"{base}/protected/x", cookie)[0]
    new_cookie = {"Cookie": fresh, "Accept": "application/json"}
    steps["protected, new token"] = http("GET", f"{base}/protected/x", new_cookie)[0]
    steps["active users"] = http("GET", f"{base}/users/active",
                                 {"secret": "admin-api-key"})[0]
    steps["logout"] = http("GET", f"{base}/logout",
                           {**new_cookie, "secret": "website-api-key"})[0]
    steps["protected after logout"] = http("GET", f"{base}/protected/x", new_cookie)[0]
    return steps, fresh.split("=", 1)[-1]


EXPECTED = {"login": 200, "userinfo": 200, "protected": 200, "refresh": 200,
            "old token after refresh": 401, "protected, new token": 200, "active users": 200,
            "logout": 302, "protected after logout": 401}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = OUT / "run" / "redis-cluster"
    folder.mkdir(parents=True, exist_ok=True)
    free = auth0_stack.ports(11)
    nodes, buses = free[:3], free[3:6]
    proxy, proxy_admin, webdis, single, single_webdis = free[6:]
    processes = Processes(folder)
    stack = Stack("redis-cluster")
    try:
        start_cluster(processes, nodes, buses)
        endpoints = "\n".join(
            f"        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, "
            f"port_value: {p} }} }} }}" for p in nodes)
        (folder / "proxy.yaml").write_text(PROXY.format(
            listen=proxy, admin=proxy_admin, endpoints=endpoints, password=REDIS_PASSWORD))
        processes.start("proxy", [str(ENVOY), "-c", str(folder / "proxy.yaml"),
                                  "--concurrency", "1", "--disable-hot-restart",
                                  "-l", "warning"], proxy)
        start_webdis(processes, "webdis", webdis, proxy)
        processes.start("single", ["redis-server", "--port", str(single), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--requirepass", REDIS_PASSWORD], single)
        start_webdis(processes, "single-webdis", single_webdis, single)
        stack.upstreams()
        _, port, _ = stack.envoy("filter", render=with_store(stack, webdis))
        steps, _ = session_walk(port)
        for _ in range(30):  # a few more sessions, to see them spread over the nodes
            redis_path.login(port)
        keys = {p: int(redis_cli(p, "DBSIZE", user=ADMIN)) for p in nodes}
        print("session walk through the cluster:", steps)
        print("keys per node:", keys)
        ok = steps == EXPECTED
        # The filter's session read, loaded on both Webdis side by side.
        sid = redis_path.login(port)
        key = f"cluster:s:{hashlib.sha256(sid.encode()).hexdigest()}"
        redis_path.webdis_call(single_webdis, "SET", key, redis_path.webdis_call(webdis, "GET",
                                                                                 key))
        read = lua_script(OUT / "cluster-get.lua", "POST", redis_path.command("GET", key),
                          redis_path.webdis_headers())
        runs = []
        for i in range(args.runs):  # one after the other, in alternating order
            order = (single_webdis, webdis) if i % 2 == 0 else (webdis, single_webdis)
            rates = {p: wrk(f"http://127.0.0.1:{p}/", args.seconds, 16, read)["rps"]
                     for p in order}
            runs.append([rates[single_webdis], rates[webdis]])
        print("Webdis GET ops/s, one redis-server / cluster through redis_proxy:",
              " ".join(f"{a:.0f}/{b:.0f}" for a, b in runs))
        result = {"steps": steps, "keys_per_node": keys, "ops_single_vs_cluster": runs}
        (OUT / "redis-cluster.json").write_text(json.dumps(result, indent=2) + "\n")
        if not ok:
            sys.exit(f"redis_cluster: unexpected answers {steps}, expected {EXPECTED}")
    finally:
        stack.stop()
        processes.stop()


if __name__ == "__main__":
    main()
