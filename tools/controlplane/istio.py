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
  router inserts its value (a `config_discovery` over ADS is pointed at that resource's file).
  A local module file named in the patch is replaced by --wasm.
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
  and the HBONE plumbing of waypoints are left out. The application is one route to the echo
  upstream, named as Istio names the application's cluster.
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
            code = config["vm_config"]["code"]
            if "local" not in code:
                fail("an EnvoyFilter's Wasm module must be a local file (the agent fetches "
                     "modules only for ECDS resources that are a Wasm filter)")
            code["local"] = {"filename": self.args.wasm}
            configuration = config.get("configuration", {})
            if configuration.get("@type") == STRING_VALUE:
                parsed = json.loads(configuration["value"])
                config["configuration"] = self.plugin_configuration(parsed)
        return node

    def envoy_filter_filters(self):
        extensions, filters = {}, []
        for envoy_filter in of_kind(self.documents, "EnvoyFilter"):
            if envoy_filter["metadata"]["name"] in self.args.without:
                continue
            for patch in envoy_filter["spec"]["configPatches"]:
                context = patch.get("match", {}).get("context")
                wanted = "SIDECAR_INBOUND" if self.waypoint else "GATEWAY"
                if context not in (wanted, "ANY", None):
                    continue
                operation, value = patch["patch"]["operation"], patch["patch"]["value"]
                if patch["applyTo"] == "EXTENSION_CONFIG":
                    if operation != "ADD":
                        continue  # istiod applies only ADD to EXTENSION_CONFIG
                    extensions[value["name"]] = self.localise_wasm(value["typed_config"])
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
            "route_config": {"name": "http.8080", "virtual_hosts": [{
                "name": "*:8080", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"},
                            "route": {"cluster": self.app_cluster_name(), "timeout": "0s"}}]}]},
            "http_filters": self.http_filters(),
        }
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
        clusters = self.tenant_clusters() + [self.cluster(self.app_cluster_name(), "STATIC", self.args.upstream)]
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
