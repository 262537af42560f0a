"""The Python side of `auth0-stack` (tests/harness/bin/auth0_stack.rs), the one renderer of the
filter's Envoy configuration and the one launcher of the emulator, the echo upstream, Envoy,
redis-server and Webdis, which the integration tests use too. bench/, tests/api_check.py and
tests/browser/login_test.py start their stacks through `Up` and talk to them with `http`.
Stdlib only.

The binary is $AUTH0_STACK_BIN when set (the Makefile builds it first), else built here with
`cargo build -p auth0-filter-tests --bin auth0-stack` (nothing to do when it is current).
"""

import json
import os
import pathlib
import selectors
import signal
import subprocess
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parent.parent
_binary = None


def binary():
    global _binary
    if _binary is None:
        given = os.environ.get("AUTH0_STACK_BIN")
        if given:
            _binary = given
        else:
            subprocess.run(["cargo", "build", "-q", "-p", "auth0-filter-tests", "--bin",
                            "auth0-stack"], cwd=REPO, check=True, timeout=1200)
            _binary = str(REPO / "target" / "debug" / "auth0-stack")
    return _binary


def render(*args):
    """`auth0-stack render ARGS…`: the Envoy configuration `make run` runs."""
    return subprocess.run([binary(), "render", *map(str, args)], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def filter_config(auth0, listen):
    """envoy/filter-config.json for a tenant on port `auth0` and a gateway on `listen`."""
    return json.loads(subprocess.run([binary(), "filter-config", str(auth0), str(listen)],
                                     check=True, capture_output=True, text=True,
                                     timeout=60).stdout)


def ports(count):
    """`count` free 127.0.0.1 ports."""
    out = subprocess.run([binary(), "ports", str(count)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return [int(port) for port in out.split()]


class Up:
    """`auth0-stack up ARGS…`, ready: `info` is its JSON line (ports, pids, paths). `stop()`
    (or leaving a `with` block) closes its standard input, which stops everything it started;
    if this process dies instead, the pipe closes all the same."""

    def __init__(self, *args, ready_within=240):
        self.proc = subprocess.Popen([binary(), "up", *map(str, args)], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True)
        try:
            self.info = json.loads(self._first_line(ready_within))
        except BaseException:
            self.stop()
            raise

    def _first_line(self, seconds):
        deadline = time.monotonic() + seconds
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"auth0-stack up: not ready within {seconds}s")
                if not selector.select(left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError(
                        f"auth0-stack up exited ({self.proc.wait(timeout=30)}) before it was "
                        "ready; see its message above")
                line += chunk
        return line

    def __getitem__(self, key):
        return self.info[key]

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()

    def close(self):
        """Asks it to stop, without waiting."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def stop(self, seconds=30):
        if self.proc.poll() is None:
            try:
                self.close()
                self.proc.wait(timeout=seconds)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http(method, url, headers=None, body=None, timeout=10):
    """One request; returns (status, headers dict lower-cased, body bytes). No redirects are
    followed and error statuses are returned, not raised."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
