#!/usr/bin/env python3
"""`make check-manifests`: every shipped Kubernetes manifest against its CRD's OpenAPI schema.

Every YAML document under istio/ and envoy-gateway/ (recursively, *.yaml and *.yml) is found
by apiVersion (group/version) and kind in the CRDs kept in tests/fixtures/crds/ (taken from the
projects' releases, see the README there) and validated against that version's
`openAPIV3Schema` the way the API server treats a structural schema under `kubectl apply`'s
strict field validation:
- types, enums, required, patterns, lengths, ranges, list sizes and the formats Kubernetes
  knows (int32/int64 ranges, byte, date-time, ipv4, ipv6);
- a field the schema does not name is an error (the server rejects it under
  `--validate=strict` and would silently prune it otherwise), except below
  `x-kubernetes-preserve-unknown-fields`;
- `x-kubernetes-int-or-string`, `x-kubernetes-list-type: set|map` (no duplicates), `nullable`
  (a null anywhere else is reported: the server would drop the field without a word);
- `metadata` as the server checks ObjectMeta: a DNS-1123 name, a namespace only on namespaced
  kinds, labels and annotations as string maps with valid keys, no server-set fields;
- no `status` (the controller writes it).
- the CEL rules (`x-kubernetes-validations`) cel-python can evaluate (tests/manifest_cel.py);
  each document reports how many rules were evaluated and how many not (those that need
  Kubernetes' own CEL libraries, and transition rules).
A kind without a CRD fixture fails, except the core kinds in CORE_KINDS, checked minimally.
Helm values files (`values.yaml`, `*-values.yaml`, `*.values.yaml`: input to a chart, not
objects) are listed and skipped.

Usage (repository root, the project .venv's python):
    check_manifests.py              check istio/ and envoy-gateway/
    check_manifests.py FILE...      check these files
    check_manifests.py --self-test  the fixtures under tests/fixtures/manifests/ must give the
                                    errors their `# expect:` lines name (schema-bad/) or pass
                                    (schema-good/, config-bad/: the config check's business)
"""
import base64
import binascii
import copy
import datetime
import ipaddress
import json
import pathlib
import re
import sys

import jsonschema
import yaml

import manifest_cel

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRD_DIR = ROOT / "tests" / "fixtures" / "crds"
MANIFEST_DIRS = ["istio", "envoy-gateway"]
SELF_TEST_DIR = ROOT / "tests" / "fixtures" / "manifests"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# OpenAPI v3 value validations that JSON Schema draft 4 spells the same way.
VALUE_KEYWORDS = [
    "type", "enum", "required", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "minItems", "maxItems",
    "uniqueItems", "minProperties", "maxProperties",
]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# ObjectMeta fields a manifest may set; the others exist but are written by the server.
META_FIELDS = {"name", "generateName", "namespace", "labels", "annotations", "finalizers",
               "ownerReferences"}
SERVER_META_FIELDS = {"uid", "resourceVersion", "generation", "creationTimestamp",
                      "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields",
                      "selfLink"}


def string_map(values=None):
    return {"type": "object", "additionalProperties": values or {"type": "string"}}


PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
INT_OR_STRING = {"type": ["integer", "string"]}
# Core kinds a deployment may ship next to the CRs, checked minimally: their top-level and
# spec field names and the types of the fields a manifest here would use.
CORE_KINDS = {
    ("v1", "Namespace"): {"scope": "Cluster", "schema": {
        "properties": {"spec": {"type": "object", "additionalProperties": False, "properties": {
            "finalizers": {"type": "array", "items": {"type": "string"}}}}}}},
    ("v1", "ServiceAccount"): {"scope": "Namespaced", "schema": {"properties": {
        "automountServiceAccountToken": {"type": "boolean"},
        "imagePullSecrets": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"name": {"type": "string"}}}},
        "secrets": {"type": "array", "items": {"type": "object"}}}}},
    ("v1", "ConfigMap"): {"scope": "Namespaced", "schema": {"properties": {
        "data": string_map(), "binaryData": string_map({"type": "string", "format": "byte"}),
        "immutable": {"type": "boolean"}}}},
    ("v1", "Secret"): {"scope": "Namespaced", "schema": {"properties": {
        "data": string_map({"type": "string", "format": "byte"}), "stringData": string_map(),
        "type": {"type": "string"}, "immutable": {"type": "boolean"}}}},
    ("v1", "Service"): {"scope": "Namespaced", "schema": {"properties": {"spec": {
        "type": "object", "additionalProperties": False, "properties": {
            "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
            "selector": string_map(), "externalName": {"type": "string"},
            "clusterIP": {"type": "string"}, "clusterIPs": {"type": "array"},
            "externalIPs": {"type": "array"}, "loadBalancerIP": {"type": "string"},
            "loadBalancerSourceRanges": {"type": "array"}, "loadBalancerClass": {"type": "string"},
            "externalTrafficPolicy": {"enum": ["Cluster", "Local"]},
            "internalTrafficPolicy": {"enum": ["Cluster", "Local"]},
            "sessionAffinity": {"enum": ["ClientIP", "None"]}, "sessionAffinityConfig": {"type": "object"},
            "ipFamilies": {"type": "array"}, "ipFamilyPolicy": {"type": "string"},
            "publishNotReadyAddresses": {"type": "boolean"}, "healthCheckNodePort": PORT,
            "allocateLoadBalancerNodePorts": {"type": "boolean"},
            "trafficDistribution": {"type": "string"},
            "ports": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["port"],
                "properties": {
                    "name": {"type": "string"}, "port": PORT, "targetPort": INT_OR_STRING,
                    "protocol": {"enum": ["TCP", "UDP", "SCTP"]}, "appProtocol": {"type": "string"},
                    "nodePort": PORT}}}}}}}},
}


class Crd:
    def __init__(self, path, crd, version):
        self.path = path
        self.group = crd["spec"]["group"]
        self.kind = crd["spec"]["names"]["kind"]
        self.scope = crd["spec"]["scope"]
        self.version = version
        self.schema = None
        self.raw = version["schema"]["openAPIV3Schema"]

    def validator(self):
        if self.schema is None:
            self.schema = convert(self.raw, structural=True, root=True)
        return VALIDATOR(self.schema, format_checker=FORMATS)


def load_crds():
    """(group/version, kind) -> Crd for every served version of every fixture CRD."""
    crds = {}
    for path in sorted(CRD_DIR.glob("*/*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=LOADER):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                    crds[key] = Crd(path, crd, version)
    return crds


def convert(node, structural, root=False):
    """An OpenAPI v3 CRD schema node as a JSON Schema (draft 4) node with the Kubernetes rules.

    `structural`: the node is reached through properties/items/additionalProperties, where
    the API server decides which fields exist; inside allOf/anyOf/oneOf/not a schema only
    adds value validations to the fields named outside, so no field is unknown there.
    """
    out = {k: copy.deepcopy(node[k]) for k in VALUE_KEYWORDS if k in node}
    if "properties" in node:
        out["properties"] = {
            name: convert(sub, structural and not (root and name == "metadata"))
            for name, sub in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = convert(node["items"], structural)
    if "additionalProperties" in node:
        extra = node["additionalProperties"]
        out["additionalProperties"] = convert(extra, structural) if isinstance(extra, dict) else extra
    for junctor in ("allOf", "anyOf", "oneOf"):
        if junctor in node:
            out[junctor] = [convert(sub, False) for sub in node[junctor]]
    if "not" in node:
        out["not"] = convert(node["not"], False)
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("x-kubernetes-list-type") in ("set", "map"):
        out["x-list"] = {"type": node["x-kubernetes-list-type"],
                         "keys": node.get("x-kubernetes-list-map-keys", [])}
    is_object = node.get("type") == "object" or "properties" in node
    if (structural and is_object and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if root:
        # Every object has these, whether the CRD's schema names them or not.
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
        props["status"] = {"not": {}, "x-message": "status is written by the controller"}
    if node.get("nullable"):
        return {"anyOf": [{"type": "null"}, out]}
    return out


def list_keyword(validator, spec, instance, schema):
    if not isinstance(instance, list):
        return
    seen = []
    for item in instance:
        if spec["type"] == "set":
            key, what = item, f"item {item!r}"
        else:
            values = {k: item.get(k) if isinstance(item, dict) else None for k in spec["keys"]}
            key, what = json.dumps(values, sort_keys=True), f"key {values}"
        if key in seen:
            yield jsonschema.ValidationError(
                f"duplicate {what} in a list of x-kubernetes-list-type {spec['type']}")
        seen.append(key)


def no_status_keyword(validator, message, instance, schema):
    yield jsonschema.ValidationError(message)


VALIDATOR = jsonschema.validators.extend(jsonschema.Draft4Validator, {
    "x-list": list_keyword,
    "x-message": no_status_keyword,
})
# `not: {}` fails everything; the x-message keyword says why, so drop the generic error.
_NOT = VALIDATOR.VALIDATORS["not"]


def _not_quiet(validator, not_schema, instance, schema):
    if "x-message" in schema:
        return iter(())
    return _NOT(validator, not_schema, instance, schema)


VALIDATOR = jsonschema.validators.extend(VALIDATOR, {"not": _not_quiet})

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("int32")
def _int32(value):
    return not isinstance(value, int) or -2**31 <= value < 2**31


@FORMATS.checks("int64")
def _int64(value):
    return not isinstance(value, int) or -2**63 <= value < 2**63


@FORMATS.checks("byte", raises=(binascii.Error, ValueError))
def _byte(value):
    if isinstance(value, str):
        base64.b64decode(value, validate=True)
    return True


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value):
    if isinstance(value, str):
        if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", value):
            raise ValueError("not RFC 3339")
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("ipv4", raises=ValueError)
def _ipv4(value):
    return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))


@FORMATS.checks("ipv6", raises=ValueError)
def _ipv6(value):
    return not isinstance(value, str) or bool(ipaddress.IPv6Address(value))


def check_metadata(meta, scope):
    if not isinstance(meta, dict):
        return ["metadata: must be a mapping"]
    errors = []
    for key in meta:
        if key in SERVER_META_FIELDS:
            errors.append(f"metadata.{key}: written by the API server, not by a manifest")
        elif key not in META_FIELDS:
            errors.append(f"metadata.{key}: not an ObjectMeta field")
    name = meta.get("name")
    if name is None and "generateName" not in meta:
        errors.append("metadata.name: required")
    elif name is not None and not (isinstance(name, str) and len(name) <= 253
                                   and DNS1123_SUBDOMAIN.match(name)):
        errors.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    namespace = meta.get("namespace")
    if namespace is not None:
        if scope == "Cluster":
            errors.append("metadata.namespace: the kind is cluster-scoped")
        elif not (isinstance(namespace, str) and len(namespace) <= 63
                  and DNS1123_LABEL.match(namespace)):
            errors.append(f"metadata.namespace: {namespace!r} is not a DNS-1123 label")
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            errors.append(f"metadata.{field}: must be a mapping")
            continue
        for key, value in values.items():
            if not valid_qualified_key(key):
                errors.append(f"metadata.{field}: {key!r} is not a valid key")
            if not isinstance(value, str):
                errors.append(f"metadata.{field}.{key}: {value!r} is not a string (quote it)")
            elif field == "labels" and not (len(value) <= 63 and LABEL_VALUE.match(value)):
                errors.append(f"metadata.labels.{key}: {value!r} is not a valid label value")
    return errors


def valid_qualified_key(key):
    if not isinstance(key, str):
        return False
    prefix, _, name = key.rpartition("/")
    if prefix and not (len(prefix) <= 253 and DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(QUALIFIED_NAME.match(name))


def schema_errors(validator, document):
    errors = []
    for error in validator.iter_errors(document):
        leaves = [error]
        if error.context:
            # anyOf/oneOf: name what each branch disliked, the deepest first.
            leaves = sorted(error.context, key=lambda e: -len(e.absolute_path))[:3]
            errors.append(f"{path_of(error)}: {error.message[:200]}")
            errors.extend(f"  branch: {path_of(e)}: {e.message[:200]}" for e in leaves)
            continue
        errors.append(f"{path_of(error)}: {error.message[:300]}")
    return errors


def path_of(error):
    return list_path(error.absolute_path)


def list_path(parts):
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return path.lstrip(".") or "(root)"


def check_document(document, crds):
    """(description, errors, CEL rules not evaluated) for one YAML document."""
    if not isinstance(document, dict):
        return "not a mapping", ["a Kubernetes manifest document must be a mapping"], 0
    api_version, kind = document.get("apiVersion"), document.get("kind")
    name = (document.get("metadata") or {}).get("name") if isinstance(
        document.get("metadata"), dict) else None
    what = f"{kind} {name} ({api_version})"
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return what, ["apiVersion and kind are required: not a Kubernetes object"], 0
    errors = []
    if (api_version, kind) in crds:
        crd = crds[(api_version, kind)]
        if crd.version.get("deprecated"):
            errors.append(f"{api_version} {kind} is deprecated: "
                          f"{crd.version.get('deprecationWarning', '')}")
        errors += schema_errors(crd.validator(), document)
        errors += check_metadata(document.get("metadata"), crd.scope)
        cel_errors, evaluated, skipped = manifest_cel.evaluate(crd.raw, document, list_path)
        return what + f"; CEL rules: {evaluated} evaluated, {skipped} not", errors + cel_errors, skipped
    if (api_version, kind) in CORE_KINDS:
        core = CORE_KINDS[(api_version, kind)]
        schema = copy.deepcopy(core["schema"])
        schema["type"] = "object"
        schema["additionalProperties"] = False
        schema["properties"].update({"apiVersion": {}, "kind": {}, "metadata": {}})
        errors += schema_errors(VALIDATOR(schema, format_checker=FORMATS), document)
        errors += check_metadata(document.get("metadata"), core["scope"])
        return what + " [core kind, minimal check]", errors, 0
    served = sorted(v for (v, k) in list(crds) + list(CORE_KINDS) if k == kind)
    hint = f"; served versions: {', '.join(served)}" if served else \
        "; add its CRD to tests/fixtures/crds/ (or a core kind to CORE_KINDS)"
    return what, [f"no CRD fixture for {api_version} {kind}{hint}"], 0


def check_file(path, crds):
    """[(description, errors, CEL rules not evaluated)] per document; a parse error is one entry."""
    try:
        documents = [d for d in yaml.load_all(path.read_text(), Loader=LOADER) if d is not None]
    except yaml.YAMLError as e:
        return [("YAML", [f"does not parse: {e}"], 0)]
    if not documents:
        return [("empty", ["no YAML document"], 0)]
    return [check_document(d, crds) for d in documents]


def rel(path):
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def report(path, results):
    failed = False
    for index, (what, errors, _) in enumerate(results, 1):
        print(f"{'FAIL' if errors else 'ok  '} {rel(path)}#{index} {what}")
        for error in errors:
            print(f"       {error}")
        failed |= bool(errors)
    return failed


def helm_values(path):
    return path.stem == "values" or path.stem.endswith(("-values", ".values", "_values"))


def shipped_files():
    files = []
    for folder in MANIFEST_DIRS:
        base = ROOT / folder
        if base.is_dir():
            files += [p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(files)


def self_test(crds):
    """The checker must reject every schema-bad fixture with the errors it names."""
    problems, count = [], 0
    for path in sorted((SELF_TEST_DIR / "schema-bad").glob("*.yaml")):
        expected = re.findall(r"^# expect: (.+)$", path.read_text(), re.M)
        results = check_file(path, crds)
        errors = [e for _, errs, _ in results for e in errs]
        if not expected:
            problems.append(f"{rel(path)}: no `# expect:` line")
        for text in expected:
            count += 1
            if not any(text in e for e in errors):
                problems.append(f"{rel(path)}: no error contains {text!r}; got {errors}")
    for folder in ("schema-good", "config-bad"):
        for path in sorted((SELF_TEST_DIR / folder).glob("*.yaml")):
            count += 1
            for what, errors, _ in check_file(path, crds):
                if errors:
                    problems.append(f"{rel(path)} {what}: must pass the schema check: {errors}")
    for problem in problems:
        print(f"FAIL self-test: {problem}")
    print(f"self-test: {count - len(problems)} passed, {len(problems)} failed")
    return not problems and count > 0


def main(argv):
    crds = load_crds()
    if argv == ["--self-test"]:
        return 0 if self_test(crds) else 1
    files = [pathlib.Path(a) for a in argv] if argv else shipped_files()
    if not files:
        print("no manifest found under " + ", ".join(MANIFEST_DIRS))
        return 1
    failed, documents = False, 0
    for path in files:
        if helm_values(path):
            print(f"skip {rel(path)}: Helm values, not a Kubernetes object")
            continue
        results = check_file(path, crds)
        documents += len(results)
        failed |= report(path, results)
    print(f"{len(files)} file(s), {documents} document(s): {'FAILED' if failed else 'all valid'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
