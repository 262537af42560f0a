#!/usr/bin/env python3
"""The Envoy configuration Istio (istiod + the istio-agent) generates from one of the shipped
Istio shapes (istio/gateway, istio/ambient, istio/envoyfilter), as an Envoy bootstrap that runs
on 127.0.0.1. No Kubernetes or istiod can run where the tests run: this is their translation,
written from the Istio sources (release 1.30) for what matters to the filter.

Usage:
  istio.py SHAPE_DIR --listen PORT --admin PORT --auth0 PORT --upstream PORT --wasm FILE
           --dir DIR [--filter-config JSON] [--without NAME] [--module-fetch-failed NAME]
           [--istio 1.30|1.29] [--istiod-values FILE] > envoy.yaml

SHAPE_DIR holds the manifests (every document with `kind`). --filter-config is the local-run
filter configuration (JSON text or @file; by default envoy/filter-config.json for these ports):
its tenant-specific fields replace the manifests' (see `local_filter_config`), everything else
of the manifests stays. --dir receives the ECDS resource files (named after the shape, so
several shapes can share it). --without drops a WasmPlugin or EnvoyFilter by name (dropping
all of them gives the same proxy without the filter, a baseline for measurements).
--module-fetch-failed serves, for that WasmPlugin, what the agent serves when it cannot fetch
the module (an RBAC filter that denies everything for FAIL_CLOSE, allows everything for
FAIL_OPEN).

What is translated:
- WasmPlugin -> an HTTP filter delivered through ECDS (`config_discovery`; here a filesystem
  `path_config_source`, in a cluster the agent's ADS), ordered by phase, then priority, highest
  first (pilot/pkg/networking/core/listener_builder.go, listener_waypoint.go,
  push_context.go sortByPriority). Since 1.30 istiod turns each WasmPlugin into a
  TrafficExtension named `<name>~istio-translated-wasmplugin`
  (pilot/pkg/config/kube/extensions/translate.go); the filter and ECDS resource are named
  `extensions.istio.io/trafficextension/<namespace>.<that name>` (1.29:
  `extensions.istio.io/wasmplugin/<namespace>.<name>`). The PluginConfig holds name
  (`<namespace>.<name>`), root_id (pluginName), configuration (pluginConfig as JSON), vm_config
  (V8, the module, environment) and failure_policy, nothing else
  (pilot/pkg/model/extensions.go buildWasmConfig); no vm_id. The agent replaces the remote
  module with the local file it downloaded and strips its ISTIO_META_* variables
  (pkg/wasm/convert.go); here the module is --wasm. Istio sets no `default_config`: the
  listener waits for the resource (`initial_fetch_timeout: 0s`), and a module the agent cannot
  fetch becomes a deny-all (FAIL_CLOSE) or allow-all RBAC filter under the same name.
- EnvoyFilter -> EXTENSION_CONFIG ADD becomes an ECDS resource, HTTP_FILTER INSERT_BEFORE the
  router inserts its value (a `config_discovery` over ADS is pointed at that resource's file),
  HTTP_ROUTE MERGE merges its value into every route it matches (by route configuration name,
  virtual host name or domain, route name; pilot/pkg/networking/core/envoyfilter/rc_patch.go:
  messages merge field by field, map entries such as `typed_per_filter_config` are replaced by
  key). A Wasm module in an ECDS resource is converted as the agent converts it (a remote one
  becomes --wasm, ISTIO_META_* variables go; --module-fetch-failed with the EnvoyFilter's
  name gives the RBAC filter instead); a local one in the patch is replaced by --wasm.
- VirtualService bound to a Gateway of the shape (networking.istio.io, gateway context) -> the
  routes of the gateway's route configuration `http.8080`, one virtual host per VirtualService
  host (`<host>:<server port>`), one route per match in order (pilot/pkg/networking/core/
  route/route.go TranslateRoute, TranslateRouteMatch): named after the HTTP route (plus
  `.<match name>`), exact -> `path`, prefix -> `prefix`, regex -> `safe_regex`,
  `case_sensitive: !ignoreUriCase`, `headers.request` -> request_headers_to_add/remove, the
  destination -> cluster `outbound|<port>||<host>`; routes after a catch-all are dropped and
  catch-alls go last (SortVHostRoutes). Istio's retry policy and metadata are left out.
  Without a VirtualService the application is one catch-all route (a gateway Istio configured
  without one would answer 404).
- ServiceEntry (+ DestinationRule) -> the cluster `outbound|<port>||<host>` on a gateway, or
  `inbound-vip|<port>|http|<host>` on a waypoint the ServiceEntry is bound to
  (`istio.io/use-waypoint`); here it reaches the Auth0 emulator on 127.0.0.1 in plain HTTP, so
  the DestinationRule's TLS origination is not exercised.
- The listener: an ingress gateway's (use_remote_address, xff_num_trusted_hops from
  gatewayTopology.numTrustedProxies) or a waypoint's per-Service HTTP chain (no
  use_remote_address), with meshConfig.pathNormalization (listener_builder.go), no stream idle
  timeout, websocket upgrades, and the upstream filters Istio adds after the extensions
  (grpc_stats, fault, cors, router). Filters that exist only in istio-proxy (istio.stats,
  istio.metadata_exchange, istio_authn, istio.alpn, the waypoint's upstream metadata filter)
  and the HBONE plumbing of waypoints are left out. Every application cluster is the echo
  upstream.
"""
import argparse
import copy
import json
import pathlib
import sys

import yaml

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
EXTENSION_TYPE = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
PHASES = ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"]
FAILURE_POLICY = {"FAIL_CLOSE": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_OPEN", "FAIL_RELOAD": "FAIL_RELOAD"}
# The filter-config fields that belong to one tenant and one installation.
TENANT_FIELDS = ["clients", "managementClient", "apiKeys", "allowedRedirectHosts", "sessionStore"]
REPO = pathlib.Path(__file__).resolve().parents[2]
# The application behind the proxy (not part of the shipped manifests).
APP_SERVICE = ("my-app", "my-app")


def fail(message):
    sys.exit(f"istio.py: {message}")


def load_documents(shape_dir):
    documents = []
    for path in sorted(pathlib.Path(shape_dir).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and "kind" in document:
                documents.append(document)
    if not documents:
        fail(f"no manifests in {shape_dir}")
    return documents


def of_kind(documents, kind):
    return [d for d in documents if d["kind"] == kind]


def local_filter_config(manifest, local):
    """The manifest's filter config with the local run's tenant-specific values: clients,
    managementClient, apiKeys, allowedRedirectHosts, sessionStore (dropped when the local run
    has none), managementAccess.apiKeys, and auth0Clusters, whose hosts become the local ones
    while the cluster stays the manifest's (the Istio-generated cluster is the one called)."""
    config = copy.deepcopy(manifest)
    for field in TENANT_FIELDS:
        if field in local:
            config[field] = copy.deepcopy(local[field])
        else:
            config.pop(field, None)
    if "managementAccess" in config:
        config["managementAccess"]["apiKeys"] = list(local.get("managementAccess", {}).get("apiKeys", []))
    clusters = sorted(set(manifest.get("auth0Clusters", {}).values()))
    if len(clusters) != 1:
        fail(f"expected the manifest to name one Auth0 cluster, got {clusters}")
    config["auth0Clusters"] = {host: clusters[0] for host in local.get("auth0Clusters", {})}
    return config


def is_hold(plugin_config):
    return plugin_config == {"role": "hold"}


class Istio:
    def __init__(self, args):
        self.args = args
        self.documents = load_documents(args.shape_dir)
        self.local = json.loads(self.local_config_text(args))
        self.dir = pathlib.Path(args.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        waypoints = [g for g in of_kind(self.documents, "Gateway")
                     if g["spec"].get("gatewayClassName") == "istio-waypoint"]
        self.waypoint = waypoints[0] if waypoints else None
        self.ecds_files = {}
        self.route_patches = []
        self.app_clusters = set()
        self.mesh = self.mesh_config()

    @staticmethod
    def local_config_text(args):
        if args.filter_config is None:
            text = (REPO / "envoy" / "filter-config.json").read_text()
            return (text.replace("{{AUTH0_PORT}}", str(args.auth0))
                    .replace("{{LISTEN_PORT}}", str(args.listen)))
        if args.filter_config.startswith("@"):
            return pathlib.Path(args.filter_config[1:]).read_text()
        return args.filter_config

    # ---- MeshConfig (Helm values of istiod) ----
    def mesh_config(self):
        path = self.args.istiod_values
        if path is None:
            default = pathlib.Path(self.args.shape_dir).parent / "istiod-values.yaml"
            path = default if default.exists() else None
        values = yaml.safe_load(pathlib.Path(path).read_text()) if path else {}
        return (values or {}).get("meshConfig", {}) or {}

    def path_normalization(self):
        mode = self.mesh.get("pathNormalization", {}).get("normalization", "DEFAULT")
        settings = {"normalize_path": mode != "NONE", "path_with_escaped_slashes_action": "KEEP_UNCHANGED"}
        if mode in ("MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"):
            settings["merge_slashes"] = True
        if mode == "DECODE_AND_MERGE_SLASHES":
            settings["path_with_escaped_slashes_action"] = "UNESCAPE_AND_FORWARD"
        return settings

    # ---- ECDS ----
    def write_ecds(self, name, typed_config):
        """Writes one ECDS resource as the DiscoveryResponse a filesystem subscription reads,
        and returns the HTTP filter that loads it."""
        shape = pathlib.Path(self.args.shape_dir).resolve().name
        path = self.dir / f"ecds-istio-{shape}-{len(self.ecds_files)}.json"
        response = {"version_info": "1", "resources": [
            {"@type": EXTENSION_TYPE, "name": name, "typed_config": typed_config}]}
        path.write_text(json.dumps(response, indent=1))
        self.ecds_files[name] = path
        return path

    def config_source(self, path):
        return {"path_config_source": {"path": str(path)}, "resource_api_version": "V3",
                "initial_fetch_timeout": "0s"}

    # ---- WasmPlugin ----
    def wasm_plugin_names(self, plugin):
        namespace, name = plugin["metadata"]["namespace"], plugin["metadata"]["name"]
        if self.args.istio == "1.29":
            return f"extensions.istio.io/wasmplugin/{namespace}.{name}", f"{namespace}.{name}"
        name += "~istio-translated-wasmplugin"
        return f"extensions.istio.io/trafficextension/{namespace}.{name}", f"{namespace}.{name}"

    def plugin_configuration(self, plugin_config):
        if not plugin_config:
            return None
        if not is_hold(plugin_config):
            plugin_config = local_filter_config(plugin_config, self.local)
        return {"@type": STRING_VALUE, "value": json.dumps(plugin_config, separators=(",", ":"))}

    def wasm_plugin_filter(self, plugin):
        spec = plugin["spec"]
        if self.waypoint is not None and not spec.get("targetRefs"):
            fail(f"{plugin['metadata']['name']}: a waypoint takes WasmPlugins by targetRefs only")
        if self.waypoint is None and not spec.get("selector"):
            fail(f"{plugin['metadata']['name']}: a gateway WasmPlugin needs a selector")
        resource, config_name = self.wasm_plugin_names(plugin)
        if plugin["metadata"]["name"] in self.args.module_fetch_failed:
            deny = spec.get("failStrategy", "FAIL_CLOSE") != "FAIL_OPEN"
            rbac = ({"rules": {}, "rules_stat_prefix": "wasm-default-deny"} if deny
                    else {"rules_stat_prefix": "wasm-default-allow"})
            typed_config = {"@type": RBAC_TYPE, **rbac}
        else:
            vm_config = {"runtime": "envoy.wasm.runtime.v8",
                         "code": {"local": {"filename": self.args.wasm}}}
            env = {e["name"]: e.get("value", "") for e in spec.get("vmConfig", {}).get("env", [])
                   if e.get("valueFrom", "INLINE") == "INLINE"}
            if env:
                vm_config["environment_variables"] = {"key_values": env}
            config = {"name": config_name, "root_id": spec.get("pluginName", "")}
            configuration = self.plugin_configuration(spec.get("pluginConfig"))
            if configuration:
                config["configuration"] = configuration
            config["vm_config"] = vm_config
            if spec.get("failStrategy") in FAILURE_POLICY:
                config["failure_policy"] = FAILURE_POLICY[spec["failStrategy"]]
            typed_config = {"@type": WASM_TYPE, "config": config}
        path = self.write_ecds(resource, typed_config)
        return {"name": resource, "config_discovery": {
            "config_source": self.config_source(path), "type_urls": [WASM_TYPE, RBAC_TYPE]}}

    def wasm_plugin_filters(self):
        plugins = [p for p in of_kind(self.documents, "WasmPlugin")
                   if p["metadata"]["name"] not in self.args.without]
        filters = []
        for phase in PHASES:
            in_phase = [p for p in plugins if p["spec"].get("phase", "UNSPECIFIED_PHASE") == phase]
            in_phase.sort(key=lambda p: -p["spec"].get("priority", -(2 ** 31)))
            filters += [self.wasm_plugin_filter(p) for p in in_phase]
        return filters

    # ---- EnvoyFilter ----
    def localise_wasm(self, node):
        """The module and the filter configuration of every Wasm filter inside an EnvoyFilter
        value, for the local run."""
        if isinstance(node, list):
            return [self.localise_wasm(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: self.localise_wasm(value) for key, value in node.items()}
        if node.get("@type") == WASM_TYPE:
            config = node["config"]
            vm_config = config["vm_config"]
            if "remote" in vm_config["code"]:
                if not vm_config["code"]["remote"].get("http_uri", {}).get("uri"):
                    fail("a remote Wasm module without http_uri.uri (the agent refuses it)")
                env = vm_config.get("environment_variables", {}).get("key_values", {})
                for key in [k for k in env if k.startswith("ISTIO_META_")]:
                    del env[key]
                if "environment_variables" in vm_config and not env:
                    del vm_config["environment_variables"]
            vm_config["code"] = {"local": {"filename": self.args.wasm}}
            configuration = config.get("configuration", {})
            if configuration.get("@type") == STRING_VALUE:
                parsed = json.loads(configuration["value"])
                config["configuration"] = self.plugin_configuration(parsed)
        return node

    def fetch_failed(self, typed_config):
        """What the agent serves for a Wasm ECDS resource whose remote module it cannot fetch:
        an RBAC filter denying everything, or allowing everything for FAIL_OPEN."""
        if typed_config.get("@type") != WASM_TYPE or "remote" not in typed_config["config"]["vm_config"]["code"]:
            fail("--module-fetch-failed names an EnvoyFilter without a remote Wasm module")
        if typed_config["config"].get("failure_policy") == "FAIL_OPEN":
            return {"@type": RBAC_TYPE, "rules_stat_prefix": "wasm-default-allow"}
        return {"@type": RBAC_TYPE, "rules": {}, "rules_stat_prefix": "wasm-default-deny"}

    def envoy_filter_filters(self):
        extensions, filters = {}, []
        self.route_patches = []
        # Istio applies EnvoyFilters by priority (lowest first), then in creation order (here,
        # the files' order).
        envoy_filters = sorted(of_kind(self.documents, "EnvoyFilter"),
                               key=lambda f: f["spec"].get("priority", 0))
        for envoy_filter in envoy_filters:
            if envoy_filter["metadata"]["name"] in self.args.without:
                continue
            failed = envoy_filter["metadata"]["name"] in self.args.module_fetch_failed
            for patch in envoy_filter["spec"]["configPatches"]:
                context = patch.get("match", {}).get("context")
                wanted = "SIDECAR_INBOUND" if self.waypoint else "GATEWAY"
                if context not in (wanted, "ANY", None):
                    continue
                operation, value = patch["patch"]["operation"], patch["patch"]["value"]
                if patch["applyTo"] == "EXTENSION_CONFIG":
                    if operation != "ADD":
                        continue  # istiod applies only ADD to EXTENSION_CONFIG
                    extensions[value["name"]] = (self.fetch_failed(value["typed_config"]) if failed
                                                 else self.localise_wasm(value["typed_config"]))
                elif patch["applyTo"] == "HTTP_ROUTE":
                    if operation != "MERGE":
                        fail(f"unsupported HTTP_ROUTE patch {operation}")
                    self.route_patches.append(patch)
                elif patch["applyTo"] == "HTTP_FILTER":
                    sub = patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"]
                    if (operation, sub) != ("INSERT_BEFORE", "envoy.filters.http.router"):
                        fail(f"unsupported HTTP_FILTER patch {operation} {sub}")
                    filters.append(copy.deepcopy(value))
                else:
                    fail(f"unsupported EnvoyFilter patch {patch['applyTo']}")
        for http_filter in filters:
            discovery = http_filter.get("config_discovery")
            if discovery is None:
                http_filter["typed_config"] = self.localise_wasm(http_filter["typed_config"])
                continue
            if "ads" not in discovery["config_source"]:
                fail(f"{http_filter['name']}: only ADS config discovery is translated")
            if http_filter["name"] not in extensions:
                fail(f"{http_filter['name']}: no EXTENSION_CONFIG of that name")
            path = self.write_ecds(http_filter["name"], extensions[http_filter["name"]])
            discovery["config_source"] = self.config_source(path)
        return filters

    # ---- routes ----
    def gateway_of(self, virtual_service, ref):
        """The shape's networking.istio.io Gateway a VirtualService's `gateways` entry names
        (`name` in the VirtualService's namespace, or `namespace/name`)."""
        namespace, _, name = ref.rpartition("/")
        namespace = namespace or virtual_service["metadata"]["namespace"]
        for gateway in of_kind(self.documents, "Gateway"):
            if (gateway["apiVersion"].startswith("networking.istio.io/")
                    and gateway["metadata"]["name"] == name
                    and gateway["metadata"]["namespace"] == namespace):
                return gateway
        return None

    def gateway_services(self):
        """(VirtualService, the Gateway server's port) for each VirtualService bound to a
        Gateway of the shape that selects the ingress gateway this translation stands for."""
        bound = []
        for virtual_service in of_kind(self.documents, "VirtualService"):
            for ref in virtual_service["spec"].get("gateways", []):
                gateway = self.gateway_of(virtual_service, ref)
                if gateway is None:
                    fail(f"VirtualService {virtual_service['metadata']['name']}: no Gateway {ref}")
                if gateway["spec"].get("selector") != {"istio": "ingressgateway"}:
                    fail(f"Gateway {ref}: only `selector: {{istio: ingressgateway}}` is translated")
                servers = [s for s in gateway["spec"]["servers"] if s["port"]["protocol"] == "HTTP"]
                if len(servers) != 1:
                    fail(f"Gateway {ref}: expected one HTTP server")
                bound.append((virtual_service, servers[0]["port"]["number"]))
        return bound

    @staticmethod
    def route_match(match):
        out = {"prefix": "/"}
        uri = (match or {}).get("uri")
        if uri:
            if "exact" in uri:
                out = {"path": uri["exact"]}
            elif "prefix" in uri:
                out = {"prefix": uri["prefix"]}
            elif "regex" in uri:
                out = {"safe_regex": {"regex": uri["regex"]}}
        unsupported = set(match or {}) - {"uri", "ignoreUriCase", "name"}
        if unsupported:
            fail(f"unsupported HTTPMatchRequest fields {sorted(unsupported)}")
        out["case_sensitive"] = not (match or {}).get("ignoreUriCase", False)
        return out

    @staticmethod
    def is_catch_all(route):
        match = route["match"]
        return set(match) <= {"prefix", "case_sensitive"} and match.get("prefix") == "/"

    def virtual_service_routes(self, virtual_service):
        routes = []
        for http in virtual_service["spec"].get("http", []):
            destinations = http.get("route", [])
            if len(destinations) != 1:
                fail("one destination per HTTP route is translated")
            destination = destinations[0]["destination"]
            cluster = f"outbound|{destination['port']['number']}||{destination['host']}"
            self.app_clusters.add(cluster)
            for match in http.get("match") or [None]:
                name = http.get("name", "")
                if match and match.get("name"):
                    name += "." + match["name"]
                route = {"name": name, "match": self.route_match(match),
                         "route": {"cluster": cluster, "timeout": "0s"}}
                request = http.get("headers", {}).get("request", {})
                added = ([{"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                          for k, v in request.get("set", {}).items()]
                         + [{"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}
                            for k, v in request.get("add", {}).items()])
                if added:
                    route["request_headers_to_add"] = added
                if request.get("remove"):
                    route["request_headers_to_remove"] = list(request["remove"])
                routes.append(route)
                if self.is_catch_all(route):
                    return routes  # Istio drops what follows a catch-all
        return routes

    def virtual_hosts(self):
        bound = self.gateway_services()
        if not bound:
            self.app_clusters.add(self.app_cluster_name())
            return [{"name": "*:8080", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "route": {"cluster": self.app_cluster_name(), "timeout": "0s"}}]}]
        hosts = {}
        for virtual_service, port in bound:
            routes = self.virtual_service_routes(virtual_service)
            for host in virtual_service["spec"]["hosts"]:
                vhost = hosts.setdefault(host.lower(), {
                    "name": f"{host.lower()}:{port}", "domains": [host.lower()], "routes": []})
                vhost["routes"] += copy.deepcopy(routes)
        for vhost in hosts.values():
            vhost["routes"] = ([r for r in vhost["routes"] if not self.is_catch_all(r)]
                               + [r for r in vhost["routes"] if self.is_catch_all(r)])
        return list(hosts.values())

    @staticmethod
    def merge(target, value):
        """Protobuf merge of a patch value (as istiod merges an HTTP_ROUTE MERGE patch)."""
        for key, item in value.items():
            if key == "typed_per_filter_config":
                target.setdefault(key, {}).update(copy.deepcopy(item))
            elif isinstance(item, dict) and isinstance(target.get(key), dict):
                Istio.merge(target[key], item)
            elif isinstance(item, list):
                target[key] = target.get(key, []) + copy.deepcopy(item)
            else:
                target[key] = copy.deepcopy(item)

    def route_configuration(self, name):
        virtual_hosts = self.virtual_hosts()
        for patch in self.route_patches:
            match = patch["match"].get("routeConfiguration", {})
            if match.get("name", name) != name or match.get("portNumber", 80) not in (80, 8080):
                continue
            vhost_match = match.get("vhost", {})
            for vhost in virtual_hosts:
                if vhost_match.get("name", vhost["name"]) != vhost["name"]:
                    continue
                if vhost_match.get("domainName", vhost["domains"][0]) not in vhost["domains"]:
                    continue
                route_name = vhost_match.get("route", {}).get("name")
                for route in vhost["routes"]:
                    if route_name is None or route.get("name") == route_name:
                        self.merge(route, patch["patch"]["value"])
        return {"name": name, "virtual_hosts": virtual_hosts}

    # ---- clusters ----
    def tenant_clusters(self):
        clusters = []
        for entry in of_kind(self.documents, "ServiceEntry"):
            bound = entry["metadata"].get("labels", {}).get("istio.io/use-waypoint")
            if self.waypoint is not None and bound != self.waypoint["metadata"]["name"]:
                continue  # a waypoint has clusters only for what is bound to it
            for host in entry["spec"]["hosts"]:
                for port in entry["spec"]["ports"]:
                    name = (f"inbound-vip|{port['number']}|http|{host}" if self.waypoint
                            else f"outbound|{port['number']}||{host}")
                    clusters.append(self.cluster(name, "STRICT_DNS", self.args.auth0))
        return clusters

    def app_cluster_name(self):
        namespace, service = APP_SERVICE
        if self.waypoint is not None:
            refs = [r for p in of_kind(self.documents, "WasmPlugin")
                    for r in p["spec"].get("targetRefs", []) if r.get("kind") == "Service"]
            if refs:
                namespace = self.waypoint["metadata"]["namespace"]
                service = refs[0]["name"]
            return f"inbound-vip|80|http|{service}.{namespace}.svc.cluster.local"
        return f"outbound|80||{service}.{namespace}.svc.cluster.local"

    @staticmethod
    def cluster(name, kind, port):
        endpoint = {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        cluster = {"name": name, "type": kind, "connect_timeout": "10s",
                   "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [endpoint]}]}}
        if kind == "STRICT_DNS":
            cluster["dns_lookup_family"] = "V4_ONLY"
        return cluster

    # ---- the listener ----
    def http_filters(self):
        filters = self.wasm_plugin_filters() + self.envoy_filter_filters()
        filters += [
            {"name": "envoy.filters.http.grpc_stats", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
                "emit_filter_state": True, "stats_for_all_methods": False}},
            {"name": "envoy.filters.http.fault", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
            {"name": "envoy.filters.http.cors", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ]
        return filters

    def connection_manager(self):
        hcm = {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "inbound_0.0.0.0_80" if self.waypoint else "outbound_0.0.0.0_8080",
            "codec_type": "AUTO",
            "use_remote_address": self.waypoint is None,
            **self.path_normalization(),
            "stream_idle_timeout": "0s",
            "upgrade_configs": [{"upgrade_type": "websocket"}],
            "request_id_extension": {"typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
                "use_request_id_for_trace_sampling": True}},
        }
        hcm["http_filters"] = self.http_filters()  # reads the EnvoyFilters' route patches too
        hcm["route_config"] = self.route_configuration("http.8080")
        trusted = self.mesh.get("defaultConfig", {}).get("gatewayTopology", {}).get("numTrustedProxies")
        if self.waypoint is None and trusted:
            hcm["xff_num_trusted_hops"] = trusted
        return hcm

    def bootstrap(self):
        if self.waypoint is not None:
            namespace = self.waypoint["metadata"]["namespace"]
            name = self.waypoint["metadata"]["name"]
            node = {"id": f"waypoint~127.0.0.1~{name}-0.{namespace}~{namespace}.svc.cluster.local",
                    "cluster": f"{name}.{namespace}"}
            listener_name = "main_internal"
        else:
            node = {"id": "router~127.0.0.1~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local",
                    "cluster": "istio-ingressgateway.istio-system"}
            listener_name = "0.0.0.0_8080"
        listener = {"name": listener_name,
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": self.args.listen}},
                    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                    "typed_config": self.connection_manager()}]}]}
        clusters = self.tenant_clusters() + [self.cluster(name, "STATIC", self.args.upstream)
                                             for name in sorted(self.app_clusters)]
        return {"node": node,
                "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": self.args.admin}}},
                "static_resources": {"listeners": [listener], "clusters": clusters}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("shape_dir")
    for port in ("listen", "admin", "auth0", "upstream"):
        parser.add_argument(f"--{port}", type=int, required=True)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--filter-config")
    parser.add_argument("--without", action="append", default=[])
    parser.add_argument("--module-fetch-failed", action="append", default=[])
    parser.add_argument("--istio", choices=["1.29", "1.30"], default="1.30")
    parser.add_argument("--istiod-values")
    args = parser.parse_args()
    bootstrap = Istio(args).bootstrap()
    sys.stdout.write(yaml.safe_dump(bootstrap, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
