"""Helpers for the scripts that start the emulator and Envoy on 127.0.0.1 and talk to them
(`bench/`, `tests/api_check.py`): free ports, readiness waits, one-shot HTTP requests."""

import socket
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check, seconds, what):
    """Polls `check` until it is true; `OSError` (not listening yet) counts as not yet."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:  # URLError is an OSError too
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready within {seconds}s")


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
