#!/usr/bin/env python3
"""openapi.yaml -> crates/core/src/flows/openapi.json (minified), the document the filter serves at
`GET <prefix>/documentation/json`. `--check` fails when crates/core/src/flows/openapi.json is not what
openapi.yaml gives (run `make openapi-json` after editing openapi.yaml).

Usage: openapi_json.py [--check]   (from the repository root, with PyYAML)
"""
import json
import pathlib
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
spec = yaml.safe_load((root / "openapi.yaml").read_text())
text = json.dumps(spec, separators=(",", ":"), ensure_ascii=False, sort_keys=False) + "\n"
target = root / "crates" / "core" / "src" / "flows" / "openapi.json"
if "--check" in sys.argv[1:]:
    if not target.exists() or target.read_text() != text:
        sys.exit("crates/core/src/flows/openapi.json differs from openapi.yaml: run `make openapi-json`")
    print("crates/core/src/flows/openapi.json matches openapi.yaml")
else:
    target.write_text(text)
    print(f"{target.relative_to(root)}: {len(text.encode())} bytes")
