"""What bench.py and soak.py share: free loopback ports, the emulator and echo upstream, Envoy
started from the shipped template (through envoy/render.py) or the bench's bare variant, wrk
runs, Envoy RSS and stats. Everything started here is stopped by `Stack.stop()`. Stdlib only.
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "target" / "bench"
ENVOY = REPO / ".venv" / "bin" / "envoy"
EMULATOR = REPO / "target" / "release" / "auth0-emulator"
WASM = REPO / "target" / "wasm" / "auth0_filter.wasm"  # the shipped module (after wasm-opt)
# P1b's floor: a filter that does nothing (bench/noop-filter, `make noop-filter-wasm`),
# exporting the same callbacks as the filter.
NOOP_WASM = REPO / "target" / "wasm" / "noop_filter.wasm"

# Envoy gets core 0 and wrk core 1 when the machine has two, so wrk's own CPU use does not
# eat into the worker being measured.
TWO_CORES = (os.cpu_count() or 1) >= 2
ENVOY_CPU = ["taskset", "-c", "0"] if TWO_CORES else []
WRK_CPU = ["taskset", "-c", "1"] if TWO_CORES else []

sys.path.insert(0, str(REPO / "tools"))
from loopback import free_port, http, port_open, wait_until  # noqa: E402  (re-exported)

APP_LOGIN = "grant_type=password&username=alice&password=Alice-Passw0rd%21"


def filter_config_line(text, overrides):
    """Applies top-level `overrides` to the filter configuration JSON line of a rendered
    shipped config (render.py writes it on one line after `value: |`)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith('{"clients"'):
            config = json.loads(stripped)
            config.update(overrides)
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = indent + json.dumps(config, separators=(",", ":"))
            return "\n".join(lines)
    raise RuntimeError("no filter configuration line in the rendered Envoy config")


class Stack:
    def __init__(self, name):
        self.dir = OUT / "run" / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.children = []
        for path in (ENVOY, EMULATOR, WASM):
            if not path.exists():
                raise RuntimeError(f"{path} is missing: run `make build`")

    def spawn(self, name, argv):
        log = open(self.dir / f"{name}.log", "wb")
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                 start_new_session=True)
        self.children.append(child)
        return child

    def emulator(self):
        port = free_port()
        child = self.spawn("emulator", [str(EMULATOR), "serve", "--port", str(port),
                                        "--tenant", "emulator/tenant.json",
                                        "--key-file", str(OUT / "emulator-key.pem")])
        wait_until(lambda: port_open(port), 60, "emulator")
        self.auth0_port = port
        return port

    def echo(self):
        port = free_port()
        self.spawn("echo", [str(EMULATOR), "echo", "--port", str(port)])
        wait_until(lambda: port_open(port), 20, "echo upstream")
        self.upstream_port = port
        return port

    def shipped_config(self, listen, admin, hold=False, wasm=WASM):
        """envoy/envoy.template.yaml as `make run` renders it (`hold`: in the hold mode)."""
        ports = [str(listen), str(admin), str(self.auth0_port), str(self.upstream_port)]
        mode = ["--hold"] if hold else []
        return subprocess.run([sys.executable, str(REPO / "envoy" / "render.py"), *mode, *ports,
                               str(wasm)], check=True, capture_output=True, text=True).stdout

    def envoy(self, name, bare=False, overrides=None, concurrency=1, wasm=WASM, hold=False,
              render=None):
        """Starts an Envoy (the shipped config, with `wasm` as its module; `hold`: in the hold
        mode; `render(listen, admin)`: the config it returns instead); returns (child, listen
        port, admin port)."""
        listen, admin = free_port(), free_port()
        ports = [str(listen), str(admin), str(self.auth0_port), str(self.upstream_port)]
        if render:
            text = render(listen, admin)
        elif bare:
            text = (REPO / "bench" / "envoy-bare.template.yaml").read_text()
            for key, value in zip(["LISTEN_PORT", "ADMIN_PORT", "AUTH0_PORT", "UPSTREAM_PORT"],
                                  ports):
                text = text.replace("{{" + key + "}}", value)
        else:
            text = self.shipped_config(listen, admin, hold, wasm)
            if overrides:
                text = filter_config_line(text, overrides)
        config = self.dir / f"envoy-{name}.yaml"
        config.write_text(text)
        child = self.spawn(f"envoy-{name}", [*ENVOY_CPU, str(ENVOY), "-c", str(config),
                                             "--concurrency", str(concurrency),
                                             "--disable-hot-restart", "-l", "warning"])

        def ready():
            if child.poll() is not None:
                log = (self.dir / f"envoy-{name}.log").read_text(errors="replace")
                raise RuntimeError(f"Envoy {name} exited:\n{log[-3000:]}")
            return http("GET", f"http://127.0.0.1:{admin}/ready", timeout=1)[0] == 200

        wait_until(ready, 60, f"Envoy {name}")
        return child, listen, admin

    def stop(self):
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children = []


def rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid):
    """User + system CPU time of a process and all its threads so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def envoy_stats(admin, pattern="wasm"):
    _, _, body = http("GET", f"http://127.0.0.1:{admin}/stats?filter={pattern}")
    stats = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(": ")
        if value.strip().lstrip("-").isdigit():
            stats[name] = int(value)
    return stats


def lua_script(path, method="GET", body=None, headers=None, extra=""):
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def wrk(url, seconds, connections, script=None, threads=1, timeout=None):
    """Runs wrk; returns {"rps", "requests", "non2xx", "errors"}."""
    argv = [*WRK_CPU, "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    if script:
        argv += ["-s", str(script)]
    argv.append(url)
    out = subprocess.run(argv, check=True, capture_output=True, text=True,
                         timeout=timeout or seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": requests, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1).strip() if errors else ""}
