"""The CEL rules (`x-kubernetes-validations`) of a CRD schema, for tests/check_manifests.py.

The API server evaluates each rule with `self` bound to the value at the rule's node, after
applying the schema's defaults. Here cel-python (a pure-Python CEL interpreter, matches() on
RE2) does the same for every rule whose node the document has. A rule that needs Kubernetes'
own CEL libraries (isURL, url(), quantity(), ip(), cidr(), format() ...) does not evaluate to a
boolean here and is counted as not evaluated, as are transition rules (`oldSelf`: only on
update, against the stored object).
"""
import copy

import celpy
import celpy.celtypes

ENVIRONMENT = celpy.Environment()
_PROGRAMS = {}


def _program(rule):
    if rule not in _PROGRAMS:
        try:
            _PROGRAMS[rule] = ENVIRONMENT.program(ENVIRONMENT.compile(rule))
        except Exception:  # noqa: BLE001 - a rule cel-python cannot parse is "not evaluated"
            _PROGRAMS[rule] = None
    return _PROGRAMS[rule]


def with_defaults(schema, value):
    """`value` with the schema's defaults filled in, as the server does before validating."""
    if isinstance(value, dict):
        value = dict(value)
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name in list(value):
            sub = properties.get(name)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                value[name] = with_defaults(sub, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [with_defaults(schema["items"], item) for item in value]
    return value


def evaluate(schema, document, path_of):
    """(errors, evaluated, not evaluated) for the CEL rules that apply to `document`."""
    errors, counts = [], [0, 0]
    _walk(schema, with_defaults(schema, document), [], errors, counts, path_of)
    return errors, counts[0], counts[1]


def _walk(schema, value, path, errors, counts, path_of):
    if not isinstance(schema, dict) or value is None:
        return
    for rule in schema.get("x-kubernetes-validations") or []:
        text = rule["rule"]
        program = None if "oldSelf" in text else _program(text)
        result = None
        if program is not None:
            try:
                result = program.evaluate({"self": celpy.json_to_cel(value)})
            except Exception:  # noqa: BLE001 - cel-python raises for unsupported functions
                result = None
        if not isinstance(result, celpy.celtypes.BoolType):
            counts[1] += 1
            continue
        counts[0] += 1
        if not result:
            field = rule.get("fieldPath", "")
            message = rule.get("message") or f"failed rule: {text}"
            errors.append(f"{path_of(path)}{field}: {message} (CEL: {' '.join(text.split())[:200]})")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, sub_value in value.items():
            sub = properties.get(name, extra if isinstance(extra, dict) else None)
            _walk(sub, sub_value, path + [name], errors, counts, path_of)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(schema.get("items"), item, path + [index], errors, counts, path_of)
