"""What bench.py and soak.py share: the emulator, the echo upstream and Envoys (the shipped
configuration, or a configuration the bench renders itself) started through `auth0-stack up`
(tools/auth0_stack.py, the launcher the integration tests use), or Envoy started here directly
where its start is timed (`Stack.spawn_envoy`), wrk runs, Envoy RSS and stats. Everything
started here is stopped by `Stack.stop()`. Stdlib only.
"""
import ctypes
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
ENVOY_CPUS = ["--envoy-cpus", "0"] if TWO_CORES else []
WRK_CPU = ["taskset", "-c", "1"] if TWO_CORES else []

sys.path.insert(0, str(REPO / "tools"))
import auth0_stack  # noqa: E402
from auth0_stack import http  # noqa: E402,F401  (re-exported)

APP_LOGIN = "grant_type=password&username=alice&password=Alice-Passw0rd%21"


class Envoy:
    """One started Envoy: `pid` is Envoy's own (for its RSS and CPU time)."""

    def __init__(self, up):
        self.up = up
        self.pid = up["pids"]["envoy"]


class Spawned:
    """An Envoy this process started itself (`Stack.spawn_envoy`), not through auth0-stack, so
    its start is known to the moment: `spawned_at` is time.monotonic() just before the fork."""

    def __init__(self, argv, log, listen, admin):
        self.listen, self.admin = listen, admin
        self.log = log
        with open(log, "wb") as out:
            self.spawned_at = time.monotonic()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=REPO,
                                         preexec_fn=_die_with_parent)
        self.pid = self.proc.pid  # taskset execs Envoy: the same process

    def close(self):
        """Asks it to stop, without waiting."""
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, seconds=30):
        self.close()
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# Looked up here, not in the forked child, where loading a library could wait for a lock
# another thread of this process held at the fork.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent():
    """In the child before exec: SIGKILL when the bench dies, as auth0-stack's children do."""
    _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Stack:
    def __init__(self, name):
        self.dir = OUT / "run" / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.started = []
        for path in (ENVOY, EMULATOR, WASM):
            if not path.exists():
                raise RuntimeError(f"{path} is missing: run `make build`")

    def up(self, name, *args):
        up = auth0_stack.Up("--dir", self.dir / name, "--envoy", ENVOY, "--emulator", EMULATOR,
                            "--key-file", OUT / "emulator-key.pem", *args)
        self.started.append(up)
        return up

    def upstreams(self):
        """The emulator and the echo upstream every Envoy of the run reaches."""
        up = self.up("upstreams", "--no-envoy")
        self.auth0_port, self.upstream_port = up["auth0"], up["upstream"]

    def shipped_config(self, listen, admin, hold=False, wasm=WASM):
        """envoy/envoy.template.yaml as `make run` renders it (`hold`: in the hold mode)."""
        mode = ["--hold"] if hold else []
        return auth0_stack.render(*mode, listen, admin, self.auth0_port, self.upstream_port,
                                  wasm)

    def envoy(self, name, overrides=None, concurrency=1, wasm=WASM, hold=False, render=None,
              store=None):
        """Starts an Envoy (the shipped config, with `wasm` as its module; `hold`: in the hold
        mode; `overrides`: top-level filter configuration members; `render(listen, admin)`: the
        config it returns instead; `store="redis"`: sessions in a redis-server behind Webdis,
        both started for this Envoy, `Envoy.up` giving Webdis' port and their pids); returns
        (Envoy, listen port, admin port)."""
        args = ["--use-auth0", self.auth0_port, "--use-upstream", self.upstream_port,
                "--envoy-concurrency", concurrency, *ENVOY_CPUS, "--wasm", wasm]
        if store:
            args += ["--store", store]
        if render:
            listen, admin = auth0_stack.ports(2)
            text = render(listen, admin)
            config = self.dir / f"envoy-{name}.yaml"
            config.write_text(text)
            args += ["--envoy-config", config, "--listen-port", listen, "--admin-port", admin]
        else:
            if hold:
                args += ["--body", "hold"]
            if overrides:
                args += ["--config-json", json.dumps(overrides)]
        up = self.up(f"envoy-{name}", *args)
        return Envoy(up), up["listen"], up["admin"]

    def spawn_envoy(self, name, render, concurrency, cpus=None):
        """Starts Envoy itself on the configuration `render(listen, admin)` returns, with
        `concurrency` workers (pinned to `cpus`, a taskset list, if given), and returns at once,
        before it is ready: a `Spawned` (the caller waits for what it needs)."""
        listen, admin = auth0_stack.ports(2)
        config = self.dir / f"envoy-{name}.yaml"
        config.write_text(render(listen, admin))
        pin = ["taskset", "-c", cpus] if cpus else []
        argv = [*pin, str(ENVOY), "-c", str(config), "--concurrency", str(concurrency),
                "--disable-hot-restart", "-l", "warning"]
        envoy = Spawned(argv, self.dir / f"envoy-{name}.log", listen, admin)
        self.started.append(envoy)
        return envoy

    def stop_one(self, started):
        """Stops one thing `spawn_envoy` (or `up`) started, now."""
        started.stop()
        self.started.remove(started)

    def stop(self):
        for up in self.started:
            up.close()  # all of them stop at once
        for up in reversed(self.started):
            up.stop()
        self.started = []


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
