"""P1 of `make bench`: what a request the filter neither answers nor protects costs in each
shipped deployment shape, as a ratio to Envoy without the filter, every pair side by side in
one run; with the references a user compares against (a proxy-wasm filter that does nothing,
Envoy's native oauth2 filter with `pass_through_matcher`) and what the hold instance of the
hold mode costs. For each control-plane shape, also what a protected request with a Bearer
token costs there (N3e, the shape's own N3 of bench/anchors.py).
"""
import http.server
import json
import pathlib
import subprocess
import sys
import threading

import protected
from stack import NOOP_WASM, REPO, WASM, auth0_stack, wrk
from stack import http as request

# Envoy's native oauth2 filter on the bench's baseline, with the pass-through prefix of P1
# (`/app/`) in `pass_through_matcher`: the native reference for a filter that must see every
# request but does nothing on most. Its secrets are inline (static SDS).
OAUTH2_FILTER = """\
          - name: envoy.filters.http.oauth2
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2
              config:
                token_endpoint:
                  cluster: auth0
                  uri: http://127.0.0.1:{auth0}/oauth/token
                  timeout: 3s
                authorization_endpoint: http://127.0.0.1:{auth0}/authorize
                redirect_uri: "http://%REQ(:authority)%/callback"
                redirect_path_matcher: {{ path: {{ exact: /callback }} }}
                signout_path: {{ path: {{ exact: /signout }} }}
                pass_through_matcher:
                - {{ name: ":path", string_match: {{ prefix: "/app/" }} }}
                credentials:
                  client_id: app-client-id
                  token_secret: {{ name: oauth2-token }}
                  hmac_secret: {{ name: oauth2-hmac }}
"""
OAUTH2_SECRETS = """\
  secrets:
  - name: oauth2-token
    generic_secret: { secret: { inline_string: "app-client-secret-0123456789" } }
  - name: oauth2-hmac
    generic_secret: { secret: { inline_string: "bench-hmac-secret-0123456789abcdef" } }
"""

# The control-plane translations of the shipped Kubernetes manifests (tools/controlplane/):
# (figure, shape, path measured, target). Each runs the filter the way the platform would
# place it; a shape whose translation is not there is skipped with a note. Every shape's
# manifests protect `/protected/` and send it through the filter (Envoy Gateway: its
# `auth0-filter` HTTPRoute; istio/envoyfilter/: its routes named `auth0-filter`; the WasmPlugin
# shapes: every request), which N3e measures on `protected.PROTECTED_PATH`.
CONTROL_PLANE_SHAPES = [
    ("envoy-gateway/: filter on its HTTPRoute only", "envoy-gateway", "/app/resource", 0.97),
    ("istio/envoyfilter/: filter on its named routes only", "istio/envoyfilter",
     "/app/resource", 0.97),
    ("istio/gateway/: WasmPlugin filter + hold on every request", "istio/gateway",
     "/app/resource", None),
    ("istio/ambient/: waypoint WasmPlugin filter + hold on every request", "istio/ambient",
     "/app/resource", None),
]


def local_filter_config(stack, listen):
    """envoy/filter-config.json for the bench's emulator (as the tests give a translation)."""
    return auth0_stack.filter_config(stack.auth0_port, listen)


class ModuleServer:
    """Serves the .wasm at any path over HTTP on loopback, as Envoy Gateway's Wasm server does
    for the remote code it hands Envoy."""

    def __init__(self):
        module = WASM.read_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                self.send_response(200)
                self.send_header("content-length", str(len(module)))
                self.end_headers()
                self.wfile.write(module)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def translation(shape):
    """The control-plane translation that renders `shape`."""
    name = "envoy_gateway.py" if shape == "envoy-gateway" else "istio.py"
    return REPO / "tools" / "controlplane" / name


def control_plane_argv(stack, shape, listen, admin, config_path, module_server):
    """The translation's command line for `shape`."""
    if shape == "envoy-gateway":
        extra = ["--wasm-server", f"127.0.0.1:{module_server.port}",
                 "--backend", f"Service/edge/app=127.0.0.1:{stack.upstream_port}",
                 "--backend", f"Backend/edge/auth0-tenant=127.0.0.1:{stack.auth0_port}",
                 "--backend", "Service/session-store/webdis=127.0.0.1:9"]
    else:
        extra = ["--auth0", str(stack.auth0_port), "--upstream", str(stack.upstream_port),
                 "--dir", str(stack.dir / pathlib.Path(shape).name)]
    return [sys.executable, str(translation(shape)), str(REPO / shape), "--listen", str(listen),
            "--admin", str(admin), "--wasm", str(WASM), "--filter-config",
            f"@{config_path}", *extra]


# The resources that put the filter on a chain: without them a shape's manifests give the same
# Envoy configuration with no filter, the baseline of that shape's ratio. The gateway's own
# identity-header removal stays in the baseline, in every shape (envoy/'s catch-all route,
# Envoy Gateway's ClientTrafficPolicy, Istio's `auth0-identity-headers` EnvoyFilter).
FILTER_KINDS = {"WasmPlugin", "EnvoyExtensionPolicy"}
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def adds_the_filter(document):
    """Whether a manifest document puts the filter on a chain."""
    if not isinstance(document, dict):
        return False
    if document.get("kind") in FILTER_KINDS:
        return True
    return document.get("kind") == "EnvoyFilter" and WASM_TYPE in json.dumps(document)


def without_filter(stack, shape):
    """A copy of the shape's manifests without the resources that add the filter."""
    import yaml  # Debian's python3-yaml (`make deps`); only the control-plane shapes need it

    folder = stack.dir / "without-filter" / shape
    folder.mkdir(parents=True, exist_ok=True)
    for source in (REPO / shape).glob("*.yaml"):
        documents = [d for d in yaml.safe_load_all(source.read_text())
                     if not adds_the_filter(d)]
        (folder / source.name).write_text(yaml.safe_dump_all(documents))
    return folder


def control_plane_render(stack, shape, module_server, folder=None):
    """A `render(listen, admin)` for Stack.envoy from a control-plane translation of `shape`
    (of `folder` instead of the shipped manifests, if given), or None."""
    if not translation(shape).exists():
        return None

    def render(listen, admin):
        name = pathlib.Path(shape).name
        config_path = stack.dir / f"filter-config-{name}.json"
        config_path.write_text(json.dumps(local_filter_config(stack, listen)))
        argv = control_plane_argv(stack, shape, listen, admin, config_path, module_server)
        if folder is not None:
            argv[2] = str(folder)
        (stack.dir / name).mkdir(parents=True, exist_ok=True)
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout

    return render


def with_oauth2(config, auth0_port):
    """A rendered configuration with Envoy's oauth2 filter before the router."""
    router = "          - name: envoy.filters.http.router\n"
    config = config.replace(router, OAUTH2_FILTER.format(auth0=auth0_port) + router)
    return config.replace("  clusters:\n", OAUTH2_SECRETS + "  clusters:\n", 1)


def straight_to_auth0(config):
    """A rendered envoy/envoy.template.yaml whose `/oauth/token` route goes to the Auth0 cluster
    (the emulator) instead of the upstream: with `without_wasm`, P2's baseline, a login proxied
    by the same Envoy straight to Auth0."""
    route = '{ match: { path: "/oauth/token" }, route: { cluster: upstream } }'
    if route not in config:
        raise SystemExit("bench: the shipped configuration has no /oauth/token route to redirect")
    return config.replace(route, route.replace("cluster: upstream", "cluster: auth0"), 1)


def without_wasm(config):
    """A rendered envoy/envoy.template.yaml without its Wasm filter."""
    start = config.index("          - name: envoy.filters.http.wasm\n")
    end = config.index("          - name: envoy.filters.http.router\n")
    return config[:start] + config[end:]


def measure_pass_through(stack, args, together, ratio_figure, bench):
    """P1's figures: requests/s ratios B / A of requests the filter passes through. "no
    filter" is the same Envoy configuration without the Wasm filter. Then N3e, the protected
    route in each control-plane shape (`bench`: bench.py, for its side-by-side helpers)."""
    seconds, pairs, conns = args.seconds, args.pairs, 16
    # The baseline: the shipped configuration, routes and all, without the filter.
    _, bare, _ = stack.envoy("p1-no-filter", render=lambda listen, admin: without_wasm(
        stack.shipped_config(listen, admin)))
    _, shipped, _ = stack.envoy("p1-shipped")
    _, held, _ = stack.envoy("p1-shipped-hold", hold=True)
    _, noop, _ = stack.envoy("p1-noop", wasm=NOOP_WASM)
    _, oauth2, _ = stack.envoy("p1-oauth2", render=lambda listen, admin: with_oauth2(
        without_wasm(stack.shipped_config(listen, admin)), stack.auth0_port))
    get = lambda port, path: lambda: wrk(  # noqa: E731
        f"http://127.0.0.1:{port}{path}", seconds, conns)
    # Not measured: V8 first runs the module's functions with its baseline compiler and
    # optimises the hot ones while they run; each Envoy gets the load it is measured with.
    warm = lambda port, path: wrk(  # noqa: E731
        f"http://127.0.0.1:{port}{path}", max(1, seconds // 2), conns)
    for port in (bare, shipped, held, noop, oauth2):
        warm(port, "/through-filter/x")
        warm(port, "/app/resource")
    figures = []

    def pair(name, a, b, target):
        figures.append(ratio_figure(name, together(pairs, a, b), target))

    pair("P1a pass-through rps ratio, envoy/ config (filter off on the route) / no filter",
         get(bare, "/app/resource"), get(shipped, "/app/resource"), 0.97)
    pair("P1b pass-through rps ratio, filter on every request / do-nothing Wasm filter",
         get(noop, "/through-filter/x"), get(shipped, "/through-filter/x"), 0.98)
    pair("P1b floor, rps ratio, do-nothing Wasm filter / no filter",
         get(bare, "/through-filter/x"), get(noop, "/through-filter/x"), None)
    pair("P1c hold-mode pass-through rps ratio, filter + hold instance / no filter",
         get(bare, "/through-filter/x"), get(held, "/through-filter/x"), None)
    pair("P1c hold instance's cost, rps ratio, filter + hold / filter alone",
         get(shipped, "/through-filter/x"), get(held, "/through-filter/x"), None)
    pair("P1d reference rps ratio, Envoy's oauth2 (pass_through_matcher) / no filter",
         get(bare, "/app/resource"), get(oauth2, "/app/resource"), None)
    module_server = ModuleServer()
    started = []  # (figure, shape, its Envoy with the filter, the same without it)
    try:
        for name, shape, path, target in CONTROL_PLANE_SHAPES:
            render = control_plane_render(stack, shape, module_server)
            if render is None:
                print(f"  skipped: {name} (no translation in tools/controlplane/)", flush=True)
                continue
            plain = control_plane_render(stack, shape, module_server,
                                         without_filter(stack, shape))
            short = pathlib.Path(shape).name
            with_filter = stack.envoy(f"p1-{short}", render=render)
            without = stack.envoy(f"p1-{short}-no-filter", render=plain)
            port, baseline = with_filter[1], without[1]
            warm(port, path)
            warm(baseline, path)
            pair(f"P1e pass-through rps ratio, {name} / no filter", get(baseline, path),
                 get(port, path), target)
            started.append((name, shape, with_filter[:2], without[:2]))
        figures += measure_protected(args, bench, started)
    finally:
        module_server.stop()
    return figures


def measure_protected(args, bench, started):
    """N3e: a protected request with a Bearer token in each control-plane shape, the shape with
    the filter / the same shape without it, side by side with each Envoy's CPU per request, as
    anchors.py's N3 measures envoy/. The token is issued through the shape's own Envoy, so its
    session is in that Envoy's store; each Envoy is checked first (protected.check)."""
    figures = []
    for name, shape, (envoy, port), (bare, baseline) in started:
        token = protected.login(port)
        protected.check(name, port, token)
        status, _, body = request("GET", protected.url(baseline))
        if status != 200:
            raise RuntimeError(f"bench: {shape} without the filter answered {status} "
                               f"{body[:200]!r}")
        bearer = protected.bearer_script(f"shape-{pathlib.Path(shape).name}", token)
        protected.warm(args, (port, baseline), bearer)
        runs = bench.together(args.pairs, protected.load(bench, args, bare, baseline, bearer),
                              protected.load(bench, args, envoy, port, bearer))
        figures.append(protected.cpu_figure(
            bench, f"N3e protected route, {name} / no filter, CPU added (us/request)", runs,
            "us_added"))
    return figures
