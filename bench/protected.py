"""What the bench's protected-route figures share (N1 to N4 in bench/anchors.py, N3e in
bench/shapes.py): a Bearer token issued through an Envoy with the filter, the check an Envoy
passes before it is measured, the load with that token on the protected path, and the figure
made of side-by-side runs with each Envoy's CPU per request.
"""
import base64
import json
import statistics

from stack import APP_LOGIN, OUT, http, lua_script, wrk

FORM = "application/x-www-form-urlencoded"
PROTECTED_PATH = "/protected/x"
# The filter's identity headers, and the claim jwt_authn writes into each.
IDENTITY_CLAIMS = {"x-auth0-user-id": "sub", "x-auth0-user-groups": "scope",
                   "x-auth0-client-type": "azp"}
CONNECTIONS = 16


def url(port):
    return f"http://127.0.0.1:{port}{PROTECTED_PATH}"


def token_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def check(name, port, token, claims=None):
    """A broken anchor fails here, before anything is measured: on the protected path a valid
    Bearer token reaches the echo upstream with the three identity headers (`claims`: each
    equal to its claim), a missing or garbage token gets 401. A forged identity header sent
    along with the token never reaches the upstream as such."""
    url = f"http://127.0.0.1:{port}{PROTECTED_PATH}"
    status, _, body = http("GET", url, {"Authorization": f"Bearer {token}",
                                        "x-auth0-user-id": "forged"})
    if status != 200:
        raise RuntimeError(f"bench: {name}: a valid token got {status} {body[:200]!r}")
    seen = {}
    for header, value in json.loads(body)["headers"]:
        seen.setdefault(header.lower(), []).append(value)
    for header, claim in IDENTITY_CLAIMS.items():
        values = seen.get(header, [])
        expected = [claims[claim]] if claims else values
        if len(values) != 1 or values != expected or values == ["forged"]:
            raise RuntimeError(f"bench: {name}: {header} at the upstream is {values}, "
                               f"expected {expected or 'one value'}")
    for label, headers in (("no token", {}), ("a garbage token", {"Authorization":
                                                                   "Bearer not.a.token"})):
        status, _, body = http("GET", url, headers)
        if status != 401:
            raise RuntimeError(f"bench: {name}: {label} got {status}, expected 401 "
                               f"{body[:200]!r}")


def login(port):
    """An `app` access token, issued through the filter's Envoy at `port` ,
    so its session is in that Envoy's store."""
    status, _, body = http("POST", f"http://127.0.0.1:{port}/oauth/token",
                           {"Content-Type": FORM, "secret": "app-api-key"}, APP_LOGIN.encode())
    if status != 200:
        raise RuntimeError(f"bench: the login for a Bearer token failed: {status} {body[:200]!r}")
    return json.loads(body)["accessToken"]


def bearer_script(name, token):
    """A wrk script sending `token` as an API caller would."""
    return lua_script(OUT / f"{name}-bearer.lua", headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json"})


def warm(args, ports, script):
    """Not measured: V8 optimises the filter's hot functions under this load."""
    for port in ports:
        wrk(url(port), max(1, args.seconds // 2), CONNECTIONS, script)


def load(bench, args, envoy, port, script):
    """One measured run on the protected path, with the Envoy's CPU per request."""
    return bench.with_cpu(envoy.pid, lambda: wrk(url(port), args.seconds, CONNECTIONS, script))


def cpu_figure(bench, name, runs, kind, target=None):
    """B against A from side-by-side runs with each Envoy's CPU µs/request: `us_added` is B - A
    (a reference line), `cpu_ratio` is B / A judged against `target` (at most)."""
    per_request = [[round(a["cpu_us"], 1), round(b["cpu_us"], 1)] for a, b in runs]
    values = ([b["cpu_us"] - a["cpu_us"] for a, b in runs] if kind == "us_added" else
              [b["cpu_us"] / max(a["cpu_us"], 1e-9) for a, b in runs])
    median = statistics.median(values)
    figure = {"name": name, "kind": kind, **bench.summary(values), "target": target,
              "met": None if target is None else median <= target, **bench.raw_fields(runs),
              "cpu_us_per_request": per_request,
              "ratio": bench.summary([b["rps"] / a["rps"] for a, b in runs])}
    print(f"  {name}: {median:.3f} rps ratio {figure['ratio']['median']:.3f} "
          f"CPU us/request {per_request} rps {figure['raw_rps']}", flush=True)
    return figure
