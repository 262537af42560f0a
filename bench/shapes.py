"""P1 of `make bench`: what a request the filter neither answers nor protects costs in each
shipped deployment shape, as a ratio to Envoy without the filter, every pair side by side in
one run; with the references a user compares against (a proxy-wasm filter that does nothing,
Envoy's native oauth2 filter with `pass_through_matcher`) and what the hold instance of the
hold mode costs.
"""
import pathlib
import subprocess
import sys

from stack import NOOP_WASM, REPO, WASM, wrk

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
# (figure, script, shape folder, path measured, target). Each runs the filter the way the
# platform would place it; a shape whose script is not there is skipped with a note.
CONTROL_PLANE_SHAPES = [
    ("istio/envoyfilter: ExtensionWithMatcher skips the filter", "istio.py",
     "istio/envoyfilter", "/app/resource", 0.97),
    ("envoy-gateway/: filter on its HTTPRoute only", "envoy_gateway.py",
     "envoy-gateway", "/app/resource", 0.97),
    ("istio/gateway: WasmPlugin filter + hold on every request", "istio.py",
     "istio/gateway", "/app/resource", None),
]


def control_plane_render(stack, script, folder):
    """A `render(listen, admin)` for Stack.envoy from a control-plane translation, or None."""
    path = REPO / "tools" / "controlplane" / script
    if not path.exists():
        return None

    def render(listen, admin):
        argv = [sys.executable, str(path), str(REPO / folder), "--listen", str(listen),
                "--admin", str(admin), "--auth0", str(stack.auth0_port), "--upstream",
                str(stack.upstream_port), "--wasm", str(WASM), "--dir", str(stack.dir)]
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout

    return render


def measure_pass_through(stack, args, together, ratio_figure):
    """P1's figures."""
    seconds, pairs, conns = args.seconds, args.pairs, 16
    _, bare, _ = stack.envoy("p1-bare", bare=True)
    _, shipped, _ = stack.envoy("p1-shipped")
    _, held, _ = stack.envoy("p1-shipped-hold", hold=True)
    _, noop, _ = stack.envoy("p1-noop", wasm=NOOP_WASM)
    _, oauth2, _ = stack.envoy("p1-oauth2", render=lambda listen, admin: stack.bare_config(
        listen, admin, OAUTH2_FILTER.format(auth0=stack.auth0_port), OAUTH2_SECRETS))
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

    pair("P1a envoy/ (make run): filter off per route / no filter",
         get(bare, "/app/resource"), get(shipped, "/app/resource"), 0.97)
    pair("P1b filter on every request / do-nothing wasm filter",
         get(noop, "/through-filter/x"), get(shipped, "/through-filter/x"), 0.98)
    pair("P1b floor: do-nothing wasm filter / no filter",
         get(bare, "/through-filter/x"), get(noop, "/through-filter/x"), None)
    pair("P1c hold mode: filter + hold on every request / no filter",
         get(bare, "/through-filter/x"), get(held, "/through-filter/x"), None)
    pair("P1c hold instance's cost: filter + hold / filter alone",
         get(shipped, "/through-filter/x"), get(held, "/through-filter/x"), None)
    pair("P1d native oauth2, pass_through_matcher / no filter",
         get(bare, "/app/resource"), get(oauth2, "/app/resource"), None)
    for name, script, folder, path, target in CONTROL_PLANE_SHAPES:
        render = control_plane_render(stack, script, folder)
        if render is None:
            print(f"  skipped: {name} (tools/controlplane/{script} is missing)", flush=True)
            continue
        _, port, _ = stack.envoy("p1-" + pathlib.Path(folder).name, render=render)
        warm(port, path)
        pair(f"P1e {name} / no filter", get(bare, path), get(port, path), target)
    return figures
