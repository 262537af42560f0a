"""The native anchors of `make bench`: the filter on a protected route against what Envoy's own
filters cost for the same request, every pair side by side on one core with each Envoy's CPU
time per request (the method of P1 and P5).

- `jwt_authn` with its token cache (`jwt_cache_config`) and without it (Istio's
  RequestAuthentication sets no cache, so each request pays an RSA verification): one provider
  for the emulator's tokens with the API audience and the emulator's JWKS inline, required on
  the protected prefix and nowhere else, writing the filter's three identity headers from the
  token's claims (`claim_to_headers`).
- Each of them, and the filter, against the same Envoy without any filter; then the filter
  head to head against `jwt_authn` with its cache: the judged line.
- The pass-through anchors (a proxy-wasm filter that does nothing, Envoy's oauth2 filter with
  `pass_through_matcher`) are P1's "P1b floor" and "P1d" figures; `--anchors-only` measures
  those two pairs here, as P1 does, since P1 does not run then.

Each Envoy is checked before it is measured (a valid token gets 200 and the three headers at
the echo upstream, a missing or garbage one 401), so a broken anchor fails the bench instead
of measuring something else.
"""
import json

import protected
import shapes
from protected import IDENTITY_CLAIMS, check, cpu_figure, login, token_claims
from stack import NOOP_WASM, http, wrk

# The audience of the `app` client's access tokens (emulator/tenant.json, AUTH0_LOGIN in bench.py).
API_AUDIENCE = "https://api.example.org"
# The shipped configuration's protected route; jwt_authn's rule matches it the same way.
PROTECTED_ROUTE = ('{ match: { prefix: "/protected/", case_sensitive: false }, '
                   'route: { cluster: upstream } }')
# P1's pass-through anchors: (P1's figure name, Envoy, path), measured here only when P1 is not.
PASS_THROUGH = [
    ("P1b floor, rps ratio, do-nothing Wasm filter / no filter", "noop", "/through-filter/x"),
    ("P1d reference rps ratio, Envoy's oauth2 (pass_through_matcher) / no filter", "oauth2",
     "/app/resource"),
]
HEAD_TO_HEAD_TARGET = 1.25

JWT_AUTHN_FILTER = """\
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                auth0:
                  issuer: "{issuer}"
                  audiences: ["{audience}"]
                  local_jwks: {{ inline_string: {jwks} }}
                  forward: true
                  claim_to_headers:
{claims}{cache}              rules:
              - match: {{ prefix: "/protected/", case_sensitive: false }}
                requires: {{ provider_name: auth0 }}
"""


def emulator_issuer(auth0_port):
    """The `iss` of the emulator's tokens: its default issuer (emulator/src/main.rs), as the
    bench starts it without `--issuer`."""
    return f"http://127.0.0.1:{auth0_port}/"


def with_jwt_authn(config, auth0_port, cache):
    """A rendered configuration with Envoy's jwt_authn filter before the router (`cache`: with
    `jwt_cache_config`), the emulator's JWKS inline as it serves them now."""
    if PROTECTED_ROUTE not in config:
        raise SystemExit("bench: the shipped configuration has no /protected/ route to guard")
    status, _, body = http("GET", f"http://127.0.0.1:{auth0_port}/.well-known/jwks.json")
    if status != 200:
        raise RuntimeError(f"the emulator's JWKS: {status} {body[:200]!r}")
    claims = "".join(f"                  - {{ header_name: {name}, claim_name: {claim} }}\n"
                     for name, claim in IDENTITY_CLAIMS.items())
    cache_config = "                  jwt_cache_config: { jwt_cache_size: 100 }\n" if cache else ""
    # JSON text is a valid YAML double-quoted scalar.
    jwks = json.dumps(json.dumps(json.loads(body), separators=(",", ":")))
    filter_yaml = JWT_AUTHN_FILTER.format(issuer=emulator_issuer(auth0_port),
                                          audience=API_AUDIENCE, jwks=jwks, claims=claims,
                                          cache=cache_config)
    router = "          - name: envoy.filters.http.router\n"
    return config.replace(router, filter_yaml + router, 1)


def measure(stack, args, bench, figures=None):
    """The anchors' figures. `figures`: what the bench measured before, where P1's pass-through
    anchors already are; without it (`--anchors-only`) they are measured here."""
    def bare(listen, admin):
        return shapes.without_wasm(stack.shipped_config(listen, admin))

    def jwt_authn(cache):
        return lambda listen, admin: with_jwt_authn(bare(listen, admin), stack.auth0_port, cache)

    # Each protected-route Envoy: (Envoy, listen port).
    envoys = {name: stack.envoy(f"anchor-{name}", render=render)[:2] for name, render in (
        ("no-filter", bare), ("jwt-authn", jwt_authn(True)),
        ("jwt-authn-no-cache", jwt_authn(False)), ("filter", None))}
    ports = {name: port for name, (_, port) in envoys.items()}
    token = login(ports["filter"])
    claims = token_claims(token)
    if claims.get("iss") != emulator_issuer(stack.auth0_port):
        raise RuntimeError(f"bench: the token's issuer is {claims.get('iss')!r}")
    check("jwt_authn with its cache", ports["jwt-authn"], token, claims)
    check("jwt_authn without its cache", ports["jwt-authn-no-cache"], token, claims)
    check("the filter", ports["filter"], token)
    status, _, _ = http("GET", protected.url(ports["no-filter"]))
    if status != 200:
        raise RuntimeError(f"bench: the Envoy without a filter answered {status}")

    if figures is None:
        out = pass_through(stack, args, bench, ports["no-filter"])
    else:
        names = {f["name"] for f in figures}
        missing = [name for name, _, _ in PASS_THROUGH if name not in names]
        if missing:
            raise SystemExit(f"bench: P1's pass-through anchors are missing: {missing}")
        out = []

    bearer = protected.bearer_script("anchors", token)
    protected.warm(args, ports.values(), bearer)

    def load(name):
        return protected.load(bench, args, *envoys[name], bearer)

    for name, a, b, kind, target in (
            ("N1 protected route, jwt_authn with its cache / no filter, CPU added (us/request)",
             "no-filter", "jwt-authn", "us_added", None),
            ("N2 protected route, jwt_authn without its cache / no filter, CPU added "
             "(us/request)", "no-filter", "jwt-authn-no-cache", "us_added", None),
            ("N3 protected route, the filter / no filter, CPU added (us/request)",
             "no-filter", "filter", "us_added", None),
            ("N4 protected route head to head, the filter / jwt_authn with its cache, "
             "CPU/request ratio", "jwt-authn", "filter", "cpu_ratio", HEAD_TO_HEAD_TARGET)):
        runs = bench.together(args.pairs, load(a), load(b))
        out.append(cpu_figure(bench, name, runs, kind, target))
    return out


def pass_through(stack, args, bench, bare_port):
    """P1's two pass-through anchors, as P1 measures them (same Envoys, paths and figures)."""
    _, noop, _ = stack.envoy("anchor-noop", wasm=NOOP_WASM)
    _, oauth2, _ = stack.envoy("anchor-oauth2", render=lambda listen, admin: shapes.with_oauth2(
        shapes.without_wasm(stack.shipped_config(listen, admin)), stack.auth0_port))
    ports = {"noop": noop, "oauth2": oauth2}
    out = []
    for name, envoy, path in PASS_THROUGH:
        for port in (bare_port, ports[envoy]):
            wrk(f"http://127.0.0.1:{port}{path}", max(1, args.seconds // 2), 16)
        get = lambda port: lambda: wrk(  # noqa: E731
            f"http://127.0.0.1:{port}{path}", args.seconds, 16)
        out.append(bench.ratio_figure(
            name, bench.together(args.pairs, get(bare_port), get(ports[envoy])), None))
    return out
