#!/usr/bin/env python3
"""`make api-check`: the filter, in a real Envoy with the shipped config, against openapi.yaml.

1. crates/core/src/flows/openapi.json (served at /documentation/json) must be what openapi.yaml gives.
2. Starts the Auth0 emulator, the echo upstream and Envoy as `make run` does (`auth0-stack up`,
   tools/auth0_stack.py) on free 127.0.0.1 ports; checks that /documentation/json serves
   openapi.yaml's content.
3. Logs in (app client) for Bearer tokens, then runs schemathesis with the spec: no
   undocumented status, no 5xx but the documented upstream-failure ones (502/503/504), every
   response, content type and documented header as the spec says.
Everything started here is stopped on the way out, whatever happens.

Usage (from the repository root, with the project .venv's python):
    api_check.py ENVOY_BIN EMULATOR_BIN WASM_PATH
Environment: API_CHECK_EXAMPLES (schemathesis examples per operation, default 25),
API_CHECK_TIMEOUT (seconds for the schemathesis run, default 150), API_CHECK_ARGS (more
schemathesis arguments, e.g. `--include-operation-id refresh` while debugging).
"""
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from auth0_stack import Up, http  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / "target" / "api-check"
APP_KEY = "app-api-key"
ADMIN_KEY = "admin-api-key"
# The documented upstream-failure statuses; any other 5xx fails not_a_server_error.
UPSTREAM_FAILURES = ["502", "503", "504"]
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])


def login(base):
    form = urllib.parse.urlencode({
        "grant_type": "password", "username": "alice", "password": "Alice-Passw0rd!",
    }).encode()
    status, _, body = http("POST", f"{base}/oauth/token", {
        "secret": APP_KEY, "content-type": "application/x-www-form-urlencoded",
    }, form)
    if status != 200:
        raise SystemExit(f"login for the check failed: {status} {body[:200]!r}")
    return json.loads(body)["accessToken"]


def check_served_documentation(base):
    status, headers, body = http("GET", f"{base}/documentation/json")
    content_type = headers.get("content-type")
    expected = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    if status != 200 or content_type != "application/json" or json.loads(body) != expected:
        raise SystemExit(f"/documentation/json does not serve openapi.yaml ({status}, {content_type})")
    print("GET /documentation/json serves openapi.yaml")


def route_of(path):
    """The spec path of a request path (ids folded)."""
    status = "/users/import/status/"
    if path.startswith(status):
        return status + "{jobID}" + ("/errors" if path.endswith("/errors") else "")
    if path.startswith("/users/") and path not in ("/users/active", "/users/me", "/users/import"):
        return "/users/{userID}"
    return path


def print_statuses(har):
    """How many answers of each status each operation got: shows the run went past 401."""
    try:
        entries = json.loads(har.read_text())["log"]["entries"]
    except (OSError, ValueError, KeyError):
        return
    counts = {}
    for entry in entries:
        path = urllib.parse.urlsplit(entry["request"]["url"]).path
        key = f'{entry["request"]["method"]} {route_of(path)}'
        status = entry["response"]["status"]
        counts.setdefault(key, {}).setdefault(status, 0)
        counts[key][status] += 1
    print(f"{len(entries)} requests; statuses per operation:")
    for key in sorted(counts):
        print(f"  {key}: " + ", ".join(f"{s}×{n}" for s, n in sorted(counts[key].items())))


def schemathesis_config(tokens):
    """Credentials per operation: the app client's API key (and a live session's Bearer token,
    one session per group, since a refresh or a logout ends its session) on the login and
    identity routes, the management API key on the user routes."""
    def headers(values):
        return "{ " + ", ".join(f'"{k}" = "{v}"' for k, v in values.items()) + " }"

    def session(token):
        return headers({"secret": APP_KEY, "Authorization": f"Bearer {token}"})
    return f"""
[auth]
auto-signup = false

[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", {", ".join(f'"{s}"' for s in UPSTREAM_FAILURES)}]

[[operations]]
include-operation-id = "refresh"
headers = {session(tokens[0])}

[[operations]]
include-operation-id = "refreshAlias"
headers = {session(tokens[1])}

[[operations]]
include-operation-id = "logout"
headers = {session(tokens[2])}

[[operations]]
include-tag = "login"
headers = {headers({"secret": APP_KEY})}

[[operations]]
include-tag = "identity"
headers = {session(tokens[3])}

[[operations]]
include-tag = "users"
headers = {headers({"secret": ADMIN_KEY})}
"""


def main():
    envoy_bin, emulator_bin, wasm = sys.argv[1:4]
    check = subprocess.run([sys.executable, str(ROOT / "tools" / "openapi_json.py"), "--check"])
    if check.returncode != 0:
        return check.returncode
    examples = os.environ.get("API_CHECK_EXAMPLES", "25")
    budget = int(os.environ.get("API_CHECK_TIMEOUT", "150"))
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = None
    try:
        try:
            stack = Up("--dir", RUN_DIR, "--envoy", envoy_bin, "--emulator", emulator_bin,
                       "--wasm", wasm)
        except RuntimeError as error:
            raise SystemExit(f"{error}; see {RUN_DIR}")
        base = stack["base"]
        check_served_documentation(base)
        (RUN_DIR / "schemathesis.toml").write_text(schemathesis_config([login(base) for _ in range(4)]))
        # The user routes change the tenant (they may block or delete alice), so they run
        # after the session routes, which need alice's sessions intact.
        deadline = time.monotonic() + budget
        failed = 0
        for run, tags in (("sessions", ["login", "identity", "documentation"]), ("users", ["users"])):
            har = RUN_DIR / "report" / f"{run}.har"
            command = [
                str(pathlib.Path(sys.executable).parent / "schemathesis"),
                "--config-file", str(RUN_DIR / "schemathesis.toml"),
                "run", str(ROOT / "openapi.yaml"), "--url", base,
                *[arg for tag in tags for arg in ("--include-tag", tag)],
                "--checks", CHECKS,
                "--phases", "examples,coverage,fuzzing",
                "--max-examples", examples,
                "--max-response-time", "5",
                "--request-timeout", "10",
                "--workers", "1",  # 2 trips a CPython 3.11 AST race in schemathesis
                "--seed", "1",
                "--suppress-health-check", "all",
                "--report", "junit,har", "--report-dir", str(RUN_DIR / "report"),
                "--report-junit-path", str(RUN_DIR / "report" / f"{run}.xml"),
                "--report-har-path", str(har),
                *shlex.split(os.environ.get("API_CHECK_ARGS", "")),
            ]
            print(f"schemathesis ({run}: {', '.join(tags)})", flush=True)
            try:
                result = subprocess.run(command, cwd=RUN_DIR,
                                        timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"schemathesis did not finish within {budget}s", file=sys.stderr)
                return 1
            print_statuses(har)
            failed |= result.returncode
        if failed:
            print(f"api-check failed; Envoy log: {RUN_DIR / 'envoy.log'}", file=sys.stderr)
        return 1 if failed else 0
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
