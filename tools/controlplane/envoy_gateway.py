#!/usr/bin/env python3
"""The Envoy configuration Envoy Gateway (1.9) generates from the manifests in a folder, as one
Envoy bootstrap YAML that a plain Envoy runs (static resources instead of xDS).

Usage:
  envoy_gateway.py FOLDER --listen PORT --admin PORT --wasm FILE --wasm-server HOST:PORT
                   [--backend KIND/NAMESPACE/NAME=HOST:PORT ...] [--filter-config JSON|@FILE]
                   [--gateway NAMESPACE/NAME] [--listener NAME] > envoy.yaml

What follows Envoy Gateway's translator (envoyproxy/gateway internal/gatewayapi and
internal/xds/translator):
- one listener per Gateway listener, named <ns>/<gateway>/<listener>, its HTTP connection
  manager with Envoy Gateway's defaults and the ClientTrafficPolicy settings (path
  normalisation, slash merging, escaped slashes, header underscores, early header removal,
  timeouts, buffer limit);
- routes named httproute/<ns>/<name>/rule/<i>/match/<j>/<host>, sorted as Envoy Gateway sorts
  them (Exact, then RegularExpression, then PathPrefix; longer values first);
- one cluster per HTTPRoute rule, named httproute/<ns>/<name>/rule/<i>;
- each EnvoyExtensionPolicy `wasm` entry as an HTTP filter named
  envoy.filters.http.wasm/envoyextensionpolicy/<ns>/<name>/wasm/<i>, disabled in the filter
  chain and enabled per route (typed_per_filter_config), ordered by entry index, with its own
  VM (vm_id = the entry's name) and the code fetched from Envoy Gateway's Wasm HTTP server
  (`remote`, sha256, the retry policy Envoy Gateway sets) through the cluster `wasm_cluster`.

What differs, because no Kubernetes runs here:
- endpoints come from --backend (Services have no EDS here); a backend given there is reached
  over plain HTTP, so the Backend's TLS settings are not exercised;
- `wasm_cluster` reaches --wasm-server over plain HTTP/1.1 (Envoy Gateway: mutual TLS, HTTP/2,
  to envoy-gateway.<ns>.svc:18002), and the module is FILE;
- only the listener chosen by --listener (default: the first HTTP one) is rendered;
- the access log Envoy Gateway adds by default (to stdout) is left out.

--filter-config swaps the tenant-specific fields of the filter configuration (clients,
managementClient, apiKeys, managementAccess, allowedRedirectHosts, the host of auth0Clusters,
sessionStore but its webdisCluster) for a local run's; everything else stays the manifest's.
"""
import argparse
import base64
import hashlib
import json
import pathlib
import sys

import yaml

ROUTER = "envoy.filters.http.router"
WASM = "envoy.filters.http.wasm"
WASM_CLUSTER = "wasm_cluster"
TENANT_FIELDS = ["clients", "managementClient", "apiKeys", "managementAccess",
                 "allowedRedirectHosts"]
ESCAPED_SLASHES = {
    "KeepUnchanged": "KEEP_UNCHANGED", "RejectRequest": "REJECT_REQUEST",
    "UnescapeAndForward": "UNESCAPE_AND_FORWARD", "UnescapeAndRedirect": "UNESCAPE_AND_REDIRECT",
}
UNDERSCORES = {"Allow": "ALLOW", "RejectRequest": "REJECT_REQUEST", "DropHeader": "DROP_HEADER"}
TYPE = "type.googleapis.com/"


def fail(message):
    sys.exit(f"envoy_gateway.py: {message}")


def load(folder):
    """Every Kubernetes object in the folder's YAML files, in file and document order."""
    objects = []
    for path in sorted(pathlib.Path(folder).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "kind" in doc and "apiVersion" in doc:
                objects.append(doc)
    return objects


def ns_of(obj):
    return obj["metadata"].get("namespace", "default")


def key(obj):
    return (obj["kind"], ns_of(obj), obj["metadata"]["name"])


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def size(value):
    """A Kubernetes quantity (32768, 64Ki, 1Mi) in bytes."""
    text = str(value)
    for suffix, factor in [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("k", 1000),
                           ("M", 1000 ** 2), ("G", 1000 ** 3)]:
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * factor
    return int(text)


def targets(policy, kind, name, namespace):
    """The sectionNames a policy gives for this object ([None] for all of it), or []."""
    if ns_of(policy) != namespace:
        return []
    spec = policy["spec"]
    refs = spec.get("targetRefs", []) + ([spec["targetRef"]] if "targetRef" in spec else [])
    return [r.get("sectionName") for r in refs if r["kind"] == kind and r["name"] == name]


# ---- routes ------------------------------------------------------------------------------

def attached(route, gateway, listener):
    for ref in route["spec"].get("parentRefs", []):
        if ref.get("kind", "Gateway") != "Gateway" or ref["name"] != gateway["metadata"]["name"]:
            continue
        if ref.get("namespace", ns_of(route)) != ns_of(gateway):
            continue
        if ref.get("sectionName") in (None, listener["name"]):
            return True
    return False


def path_match(match):
    path = match.get("path", {"type": "PathPrefix", "value": "/"})
    kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
    if kind == "Exact":
        return {"path": value}, (2, len(value))
    if kind == "RegularExpression":
        return {"safe_regex": {"regex": value}}, (1, len(value))
    if value == "/":
        return {"prefix": "/"}, (0, 0)
    # Envoy Gateway matches prefixes by path segment, without the trailing slash.
    return {"path_separated_prefix": value.rstrip("/")}, (0, len(value))


def header_matches(match):
    out = []
    for header in match.get("headers", []):
        kind = header.get("type", "Exact")
        matcher = ({"exact": header["value"]} if kind == "Exact"
                   else {"safe_regex": {"regex": header["value"]}})
        out.append({"name": header["name"], "string_match": matcher})
    return out


def ir_routes(objects, gateway, listener, wasm_by_route):
    """The routes of one listener in Envoy Gateway's order, each with its cluster name."""
    routes = [r for r in of_kind(objects, "HTTPRoute") if attached(r, gateway, listener)]
    # Envoy Gateway processes HTTPRoutes oldest first, then by namespace/name.
    routes.sort(key=lambda r: (r["metadata"].get("creationTimestamp", ""), ns_of(r),
                               r["metadata"]["name"]))
    out = []
    for route in routes:
        namespace, name = ns_of(route), route["metadata"]["name"]
        hosts = route["spec"].get("hostnames") or ["*"]
        for rule_index, rule in enumerate(route["spec"]["rules"]):
            cluster = f"httproute/{namespace}/{name}/rule/{rule_index}"
            removed, added = [], []
            for f in rule.get("filters", []):
                if f["type"] == "RequestHeaderModifier":
                    modifier = f["requestHeaderModifier"]
                    removed += modifier.get("remove", [])
                    added += [{"header": {"key": h["name"], "value": h["value"]},
                               "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                              for h in modifier.get("set", [])]
                else:
                    fail(f"{cluster}: filter {f['type']} is not translated here")
            wasms = wasm_by_route.get((namespace, name, None), [])
            if rule.get("name"):
                wasms = wasms + wasm_by_route.get((namespace, name, rule["name"]), [])
            for match_index, match in enumerate(rule.get("matches") or [{}]):
                specifier, rank = path_match(match)
                headers = header_matches(match)
                for host in hosts:
                    entry = {
                        "name": f"{cluster}/match/{match_index}/{host.replace('.', '_')}",
                        "match": {**specifier, **({"headers": headers} if headers else {})},
                        "route": {"cluster": cluster,
                                  "upgrade_configs": [{"upgrade_type": "websocket"}]},
                    }
                    if added:
                        entry["request_headers_to_add"] = added
                    if removed:
                        entry["request_headers_to_remove"] = removed
                    if wasms:
                        entry["typed_per_filter_config"] = {
                            w["filter_name"]: {"@type": TYPE + "envoy.config.route.v3.FilterConfig",
                                               "config": {}}
                            for w in wasms}
                    sort_key = rank + (len(headers),
                                       sum("exact" in h["string_match"] for h in headers))
                    out.append((sort_key, host, entry, rule, route))
    # Envoy Gateway: sort.Stable(sort.Reverse(...)) on the precedence; ties keep their order.
    out.sort(key=lambda item: item[0], reverse=True)
    return out


# ---- the Wasm filters --------------------------------------------------------------------

def wasm_entries(objects, args, swap):
    """Each EnvoyExtensionPolicy `wasm` entry as Envoy Gateway's IR, keyed by the HTTPRoute
    (namespace, name, sectionName) it targets."""
    module = pathlib.Path(args.wasm).read_bytes()
    sha256 = hashlib.sha256(module).hexdigest()
    by_route = {}
    for policy in of_kind(objects, "EnvoyExtensionPolicy"):
        namespace, name = ns_of(policy), policy["metadata"]["name"]
        entries = []
        for index, wasm in enumerate(policy["spec"].get("wasm", [])):
            ir_name = f"envoyextensionpolicy/{namespace}/{name}/wasm/{index}"
            code = wasm["code"]
            if code["type"] == "Image":
                url = code["image"]["url"]
                url = url if url.startswith("oci://") else "oci://" + url
                if "@" not in url and ":" not in url[len("oci://"):].split("/")[-1]:
                    url += ":latest"
            else:
                url = code["http"]["url"]
            # Envoy Gateway serves the module at an unguessable path made from the original URL
            # and a salt of its own (a fixed one here).
            path = base64.urlsafe_b64encode(hashlib.sha256(url.encode()).digest()).decode()
            config = wasm.get("config")
            if config is not None and config.get("role") != "hold":
                config = swap(config)
            plugin = {"name": wasm.get("name", ir_name)}
            if wasm.get("rootID"):
                plugin["root_id"] = wasm["rootID"]
            plugin["vm_config"] = {
                # Envoy Gateway gives every entry a VM of its own.
                "vm_id": ir_name,
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"remote": {
                    "http_uri": {"uri": f"http://{args.wasm_server}/{path}.wasm",
                                 "cluster": WASM_CLUSTER, "timeout": "10s"},
                    "sha256": sha256,
                    "retry_policy": {"num_retries": 10,
                                     "retry_back_off": {"base_interval": "1s",
                                                        "max_interval": "30s"}},
                }},
            }
            if wasm.get("env", {}).get("hostKeys"):
                plugin["vm_config"]["environment_variables"] = {
                    "host_env_keys": wasm["env"]["hostKeys"]}
            # Go marshals the object with sorted keys, compactly.
            text = "" if config is None else json.dumps(config, sort_keys=True,
                                                         separators=(",", ":"))
            plugin["configuration"] = {"@type": TYPE + "google.protobuf.StringValue",
                                       "value": text}
            if wasm.get("failOpen"):
                plugin["fail_open"] = True
            entries.append({"index": index, "filter_name": f"{WASM}/{ir_name}",
                            "plugin": plugin})
        for ref in policy["spec"].get("targetRefs", []) + (
                [policy["spec"]["targetRef"]] if "targetRef" in policy["spec"] else []):
            if ref["kind"] != "HTTPRoute":
                fail(f"{name}: only HTTPRoute targets are translated here")
            route_key = (namespace, ref["name"], ref.get("sectionName"))
            by_route.setdefault(route_key, []).extend(entries)
    return by_route


def filter_swapper(override):
    """Replaces a manifest filter config's tenant-specific fields with the local run's."""
    def swap(config):
        if override is None:
            return config
        config = json.loads(json.dumps(config))
        for field in TENANT_FIELDS:
            if field in override:
                config[field] = override[field]
            else:
                config.pop(field, None)
        clusters = sorted(set(config.get("auth0Clusters", {}).values()))
        if len(clusters) != 1:
            fail("auth0Clusters must name one cluster to swap the tenant host")
        config["auth0Clusters"] = {host: clusters[0] for host in override.get("auth0Clusters", {})}
        if "sessionStore" in override:
            store = dict(override["sessionStore"])
            if "webdisCluster" in store and "sessionStore" in config:
                store["webdisCluster"] = config["sessionStore"]["webdisCluster"]
            config["sessionStore"] = store
        else:
            config.pop("sessionStore", None)
        return config
    return swap


def http_filters(routes):
    """The HCM's HTTP filters: every Wasm entry of the listener's routes once, disabled, in
    Envoy Gateway's order (Wasm filters by entry index, then name), then the router."""
    seen = {}
    for _, _, entry, _, _ in routes:
        for name in entry.get("typed_per_filter_config", {}):
            seen.setdefault(name, None)
    return seen


# ---- clusters, listener, bootstrap -------------------------------------------------------

def endpoint_cluster(name, host, port, dns=False, tls=None):
    cluster = {
        "name": name,
        "connect_timeout": "10s",
        "per_connection_buffer_limit_bytes": 32768,
        "circuit_breakers": {"thresholds": [{"max_retries": 1024}]},
        "common_lb_config": {},
        "ignore_health_on_host_removal": True,
        "load_balancing_policy": {"policies": [{"typed_extension_config": {
            "name": "envoy.load_balancing_policies.least_request",
            "typed_config": {
                "@type": TYPE + "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest",
                "locality_lb_config": {"locality_weighted_lb_config": {}}}}}]},
        "load_assignment": {"cluster_name": name, "endpoints": [{
            "locality": {"region": f"{name}/backend/0"},
            "load_balancing_weight": 1,
            "lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": host, "port_value": port}}}, "load_balancing_weight": 1}]}]},
    }
    if dns:
        cluster["dns_lookup_family"] = "V4_PREFERRED"
        cluster["cluster_type"] = {"name": "envoy.cluster.dns", "typed_config": {
            "@type": TYPE + "envoy.extensions.clusters.dns.v3.DnsCluster",
            "dns_lookup_family": "V4_PREFERRED", "dns_refresh_rate": "30s",
            "respect_dns_ttl": True}}
    else:
        cluster["type"] = "STATIC"
    if tls is not None:
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            **({"sni": tls["sni"]} if tls.get("sni") else {}),
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": "/etc/ssl/certs/ca-certificates.crt"}}}}}
    return cluster


def rule_cluster(objects, name, rule, route, backends):
    refs = rule.get("backendRefs", [])
    if len(refs) != 1:
        fail(f"{name}: one backendRef per rule is translated here")
    ref = refs[0]
    kind = ref.get("kind", "Service")
    target = (kind, ref.get("namespace", ns_of(route)), ref["name"])
    if "/".join(target) in backends:
        host, port = backends["/".join(target)].rsplit(":", 1)
        return endpoint_cluster(name, host, int(port))
    found = [o for o in objects if key(o) == target]
    if kind != "Backend" or not found:
        fail(f"{name}: give --backend {'/'.join(target)}=HOST:PORT")
    endpoint = found[0]["spec"]["endpoints"][0]["fqdn"]
    return endpoint_cluster(name, endpoint["hostname"], endpoint["port"], dns=True,
                            tls=found[0]["spec"].get("tls"))


def client_traffic(objects, gateway, listener):
    """The ClientTrafficPolicy spec for this listener (section-specific wins), or {}."""
    best = {}
    for policy in of_kind(objects, "ClientTrafficPolicy"):
        sections = targets(policy, "Gateway", gateway["metadata"]["name"], ns_of(gateway))
        if listener["name"] in sections:
            return policy["spec"]
        if None in sections:
            best = policy["spec"]
    return best


def connection_manager(ctp, stat_prefix, route_config, filters):
    path, headers = ctp.get("path", {}), ctp.get("headers", {})
    timeout = ctp.get("timeout", {}).get("http", {})
    common = {"headers_with_underscores_action":
              UNDERSCORES[headers.get("withUnderscoresAction", "RejectRequest")]}
    if "idleTimeout" in timeout:
        common["idle_timeout"] = timeout["idleTimeout"]
    hcm = {
        "@type": TYPE + "envoy.extensions.filters.network.http_connection_manager.v3."
                        "HttpConnectionManager",
        "stat_prefix": stat_prefix,
        "route_config": route_config,
        "http_filters": filters,
        "common_http_protocol_options": common,
        "http2_protocol_options": {"initial_connection_window_size": 1048576,
                                   "initial_stream_window_size": 65536,
                                   "max_concurrent_streams": 100},
        "server_header_transformation": "PASS_THROUGH",
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": not path.get("disableMergeSlashes", False),
        "path_with_escaped_slashes_action":
            ESCAPED_SLASHES[path.get("escapedSlashesAction", "UnescapeAndRedirect")],
    }
    if "xForwardedFor" in ctp.get("clientIPDetection", {}):
        hcm["xff_num_trusted_hops"] = ctp["clientIPDetection"]["xForwardedFor"]["numTrustedHops"]
    early = headers.get("earlyRequestHeaders", {})
    if early.get("remove") or early.get("set") or early.get("add"):
        mutations = [{"append": {"header": {"key": h["name"], "value": h["value"]}}}
                     for h in early.get("add", [])]
        mutations += [{"append": {"header": {"key": h["name"], "value": h["value"]},
                                  "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}
                      for h in early.get("set", [])]
        mutations += [{"remove": name} for name in early.get("remove", [])]
        hcm["early_header_mutation_extensions"] = [{
            "name": "envoy.http.early_header_mutation.header_mutation",
            "typed_config": {
                "@type": TYPE + "envoy.extensions.http.early_header_mutation.header_mutation."
                                "v3.HeaderMutation",
                "mutations": mutations}}]
    for field, envoy in [("requestReceivedTimeout", "request_timeout"),
                         ("requestHeadersReceivedTimeout", "request_headers_timeout"),
                         ("streamIdleTimeout", "stream_idle_timeout")]:
        if field in timeout:
            hcm[envoy] = timeout[field]
    return hcm


def render(args):
    objects = load(args.folder)
    override = None
    if args.filter_config:
        text = args.filter_config
        override = json.loads(pathlib.Path(text[1:]).read_text() if text.startswith("@")
                              else text)
    gateways = of_kind(objects, "Gateway")
    if args.gateway:
        gateways = [g for g in gateways if f"{ns_of(g)}/{g['metadata']['name']}" == args.gateway]
    if len(gateways) != 1:
        fail("the folder must hold one Gateway (or choose it with --gateway)")
    gateway = gateways[0]
    listeners = [item for item in gateway["spec"]["listeners"]
                 if (args.listener and item["name"] == args.listener)
                 or (not args.listener and item["protocol"] == "HTTP")]
    if not listeners:
        fail("no such HTTP listener on the Gateway")
    listener = listeners[0]
    full_name = f"{ns_of(gateway)}/{gateway['metadata']['name']}/{listener['name']}"
    # Envoy Gateway listens on port + 10000 for privileged ports; the stat prefix says so.
    internal_port = listener["port"] + (10000 if listener["port"] < 1024 else 0)

    wasm_by_route = wasm_entries(objects, args, filter_swapper(override))
    routes = ir_routes(objects, gateway, listener, wasm_by_route)
    plugins = {e["filter_name"]: e for entries in wasm_by_route.values() for e in entries}
    names = http_filters(routes)
    ordered = sorted(names, key=lambda n: (200 + plugins[n]["index"], n))
    filters = [{"name": n, "disabled": True, "typed_config": {
        "@type": TYPE + "envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": plugins[n]["plugin"]}} for n in ordered]
    filters.append({"name": ROUTER, "typed_config": {
        "@type": TYPE + "envoy.extensions.filters.http.router.v3.Router",
        "suppress_envoy_headers": True}})

    hosts = []
    for _, host, entry, _, _ in routes:
        if host not in hosts:
            hosts.append(host)
    virtual_hosts = [{"name": f"{full_name}/{host.replace('.', '_')}", "domains": [host],
                      "routes": [e for _, h, e, _, _ in routes if h == host]} for host in hosts]
    route_config = {"name": full_name, "ignore_port_in_host_matching": True,
                    "virtual_hosts": virtual_hosts}
    ctp = client_traffic(objects, gateway, listener)
    hcm = connection_manager(ctp, f"http-{internal_port}", route_config, filters)
    buffer_limit = size(ctp.get("connection", {}).get("bufferLimit", 32768))

    backends = dict(item.split("=", 1) for item in args.backend)
    clusters, seen = [], set()
    for _, _, entry, rule, route in routes:
        name = entry["route"]["cluster"]
        if name not in seen:
            seen.add(name)
            clusters.append(rule_cluster(objects, name, rule, route, backends))
    if filters[:-1]:
        host, port = args.wasm_server.rsplit(":", 1)
        clusters.append(endpoint_cluster(WASM_CLUSTER, host, int(port)))

    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": args.admin}}},
        "layered_runtime": {"layers": [{"name": "global_config", "static_layer": {
            "re2.max_program_size.error_level": 4294967295,
            "re2.max_program_size.warn_level": 1000}}]},
        "overload_manager": {"refresh_interval": "0.25s", "resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {
                "@type": TYPE + "envoy.extensions.resource_monitors.downstream_connections.v3."
                                "DownstreamConnectionsConfig",
                "max_active_downstream_connections": 50000}}]},
        "static_resources": {
            "listeners": [{
                "name": full_name,
                "address": {"socket_address": {"address": args.address,
                                               "port_value": args.listen}},
                "per_connection_buffer_limit_bytes": buffer_limit,
                "max_connections_to_accept_per_socket_event": 1,
                "default_filter_chain": {"name": full_name, "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm}]},
            }],
            "clusters": clusters,
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--admin", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--wasm", required=True, help="the .wasm module")
    parser.add_argument("--wasm-server", required=True,
                        help="HOST:PORT of the HTTP server that serves the module")
    parser.add_argument("--backend", action="append", default=[],
                        help="KIND/NAMESPACE/NAME=HOST:PORT, e.g. Service/edge/app=127.0.0.1:8080")
    parser.add_argument("--filter-config", help="a local run's filter config, JSON or @FILE")
    parser.add_argument("--gateway", help="NAMESPACE/NAME, when the folder holds several")
    parser.add_argument("--listener", help="the Gateway listener to render")
    args = parser.parse_args(argv)
    sys.stdout.write(yaml.safe_dump(render(args), sort_keys=False, width=100))


if __name__ == "__main__":
    main()
