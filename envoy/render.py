#!/usr/bin/env python3
"""Render envoy.template.yaml for `make run`: fill the ports, the wasm path and the filter
configuration (filter-config.json, itself templated with the Auth0 port) into one Envoy config.

Usage: render.py LISTEN ADMIN AUTH0 UPSTREAM WASM_PATH > envoy.yaml
"""
import json
import pathlib
import sys

here = pathlib.Path(__file__).parent
listen, admin, auth0, upstream, wasm = sys.argv[1:6]
config = (here / "filter-config.json").read_text().replace("{{AUTH0_PORT}}", auth0)
config = json.dumps(json.loads(config), separators=(",", ":"))
values = {
    "LISTEN_PORT": listen, "ADMIN_PORT": admin, "AUTH0_PORT": auth0, "UPSTREAM_PORT": upstream,
    "WASM_PATH": wasm, "FILTER_CONFIG": config, "PREFIX": "", "WEBDIS_PORT": "7379",
}
text = (here / "envoy.template.yaml").read_text()
for name, value in values.items():
    text = text.replace("{{" + name + "}}", value)
sys.stdout.write(text)
