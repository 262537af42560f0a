//! The plugin configuration as written: serde structs that refuse unknown keys.
//!
//! The doc comments of these types are the reference of the configuration: with the `schema`
//! feature they also derive its JSON Schema (`config::schema`), from which tools/config-schema
//! writes `schema/auth0-filter-config.schema.json` and `docs/configuration.md`. A rule the
//! schema states (`range`, `pattern`, `enum`, …) is also enforced by `Config::from_json`; a rule
//! only the loader can check is named by `x-checked-at-load-time`.

use crate::small_map::SmallMap;

use serde::Deserialize;

use super::{SameSite, Secret};

/// The filter's configuration: the original auth0-client's `config.json`, its environment
/// variables as fields, and the gateway's own fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "FilterConfig")
)]
pub(super) struct RawConfig {
    /// The Auth0 applications the filter logs in with, by client-type name: the name a request
    /// selects a client by (an API key's `clientType`, the `client-type` header,
    /// `defaultClient`). At least one.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("minProperties" = 1, "propertyNames" = {"minLength": 1}))
    )]
    pub(super) clients: SmallMap<RawClient>,
    /// The client of a request that names none. Empty means none.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(extend("x-checked-at-load-time" = "a key of `clients`, or empty"))
    )]
    pub(super) default_client: Option<String>,
    /// ID-token claims (e.g. `https://example.org/app_metadata`) whose objects are merged into
    /// the `/userinfo` answer; the `groups` of an `app_metadata` one are the identity headers'
    /// groups.
    #[serde(default)]
    pub(super) custom_claims_namespaces: Vec<String>,
    /// The Management API application, and the connections the user-management routes use.
    pub(super) management_client: RawManagementClient,
    /// Accepted as in the original's `config.json`; not used.
    #[serde(default)]
    pub(super) auth0_tenant_url: Option<String>,
    // The original's environment variables.
    /// Lifetime of a session: the `sid` cookie's `Max-Age` and the server-side record's expiry
    /// (the original's `SESSION_DURATION_SECONDS`).
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(range(min = 1), extend("default" = super::DEFAULT_SESSION_DURATION_SECONDS))
    )]
    pub(super) session_duration_seconds: Option<u64>,
    /// Adds the client's `client_id` to the logout redirect to Auth0's `/v2/logout` (the
    /// original's `AUTH0_LOGOUT_CLIENT_ID_ENABLED`).
    #[serde(default)]
    pub(super) logout_client_id_enabled: bool,
    /// Path prepended to every route the filter answers and to the protected prefixes, e.g.
    /// `/auth` (the original's `SERVICE_PREFIX`). Trailing `/` are dropped.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            pattern(r"^\s*(/[^?# ]*)?\s*$"),
            extend("default" = "", "x-checked-at-load-time" = "no `//` inside")
        )
    )]
    pub(super) service_prefix: Option<String>,
    /// Request header that carries the protocol the client used (`http` or `https`), for the
    /// logout's `returnTo` URL (the original's `ORIGINAL_PROTOCOL_HEADER`).
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            pattern(r"^\s*[A-Za-z0-9_-]+\s*$"),
            extend("default" = super::DEFAULT_PROTOCOL_HEADER)
        )
    )]
    pub(super) original_protocol_header: Option<String>,
    /// Prefix of every session-store key, so deployments sharing a store do not collide (the
    /// original's `SESSION_SCOPE`). Printable ASCII without spaces.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(pattern(r"^[!-~]*$"), extend("default" = "")))]
    pub(super) session_scope: Option<String>,
    // Gateway-specific.
    /// Which Envoy cluster reaches each Auth0 host: `host` or `host:port`, as in the
    /// `auth0Url`s, to the cluster's name. Every `auth0Url` host needs an entry.
    #[cfg_attr(
        feature = "schema",
        schemars(extend(
            "minProperties" = 1,
            "propertyNames" = {"pattern": super::schema::HOST_PATTERN},
            "additionalProperties" = {"type": "string", "pattern": super::schema::NOT_BLANK},
            "x-checked-at-load-time" = "each key a host name, IPv4 address or [IPv6] literal, \
                with an optional port"
        ))
    )]
    pub(super) auth0_clusters: SmallMap<String>,
    /// Timeout of each Auth0 callout, and of all the Webdis calls of one store operation;
    /// past it the caller gets 504 (503 for the store).
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 1, max = 60_000),
            extend("default" = super::DEFAULT_CALLOUT_TIMEOUT_MS)
        )
    )]
    pub(super) callout_timeout_ms: Option<u64>,
    /// Prefix of the filter's Envoy stats (`<statPrefix>.route.token.success`, …).
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            pattern(r"^[A-Za-z][A-Za-z0-9_]{0,63}$"),
            extend("default" = "auth0_filter")
        )
    )]
    pub(super) stat_prefix: Option<String>,
    /// API keys a request presents in the `secret` or `client-key` header to select a
    /// client. Kept only as SHA-256 digests; a key that is present but unknown is 401.
    #[serde(default)]
    pub(super) api_keys: Vec<RawApiKey>,
    /// Select the client named by a `client-type` request header, set by a filter in front
    /// (as Mia's API gateway does for the original). Only when no API key was presented.
    #[serde(default)]
    pub(super) trust_client_type_header: bool,
    /// Hosts (`name[:port]`) allowed in the logout's `returnTo`; empty allows any well-formed
    /// host. Set it whenever `X-Forwarded-Host` or `Host` can come from clients.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            inner(pattern(super::schema::HOST_PATTERN_TRIMMED)),
            extend(
                "x-checked-at-load-time" = "each a host name, IPv4 address or [IPv6] literal, \
                with an optional port"
            )
        )
    )]
    pub(super) allowed_redirect_hosts: Vec<String>,
    /// Largest request body the filter reads on the routes it answers; larger is 413.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 256, max = 1_048_576),
            extend("default" = super::DEFAULT_MAX_BODY_BYTES)
        )
    )]
    pub(super) max_body_bytes: Option<usize>,
    /// How long a full pass of the sweep that removes expired sessions from shared data takes.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 1, max = 3600),
            extend("default" = super::DEFAULT_SWEEP_INTERVAL_SECONDS)
        )
    )]
    pub(super) sweep_interval_seconds: Option<u64>,
    /// Where each route is served; the original's paths by default.
    #[serde(default)]
    pub(super) paths: RawPaths,
    /// Opens the user-management routes; absent means closed.
    #[serde(default)]
    pub(super) management_access: Option<RawManagementAccess>,
    /// Route prefixes that need a verified token; absent means none.
    #[serde(default)]
    pub(super) protected_routes: Option<RawProtectedRoutes>,
    /// How often each tenant's signing keys (JWKS) are fetched again.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(range(min = 10, max = 86_400), extend("default" = 600))
    )]
    pub(super) jwks_refresh_seconds: Option<u64>,
    /// How long an `/authorize` login can be redeemed: its cookie's `Max-Age` and signed
    /// expiry (the original: 10 minutes).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 3600), extend("default" = 600)))]
    pub(super) login_state_ttl_seconds: Option<u64>,
    /// Where sessions, the live-users set and the management token live; shared data by default.
    #[serde(default)]
    pub(super) session_store: Option<RawSessionStore>,
    /// Clock skew allowed on the `exp` and `nbf` of the tokens the filter verifies.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 300), extend("default" = 60)))]
    pub(super) token_leeway_seconds: Option<u64>,
    /// Answers `GET <servicePrefix>/documentation/json` with the OpenAPI description of the
    /// routes; `false` leaves that path to the upstream.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = true)))]
    pub(super) serve_documentation: Option<bool>,
    /// How the filter keeps a request it answers from the upstream while it reads its body.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = "stopIteration")))]
    pub(super) body_reading: Option<super::BodyReading>,
}

/// Where sessions, the live-users set and the management token live.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "SessionStore", transform = super::schema::session_store_rules)
)]
pub(super) struct RawSessionStore {
    /// `shared`: Envoy's shared data (one Envoy). `redis`: Redis through Webdis, for several
    /// replicas.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["shared", "redis"])))]
    pub(super) backend: String,
    /// The Envoy cluster that reaches Webdis; required with `redis`.
    #[serde(default)]
    pub(super) webdis_cluster: Option<String>,
    /// `:authority` of the Webdis calls; the cluster's name by default.
    #[serde(default)]
    pub(super) webdis_authority: Option<String>,
    /// Prefix of every Redis key, so deployments can share one Redis; `sessionScope` by
    /// default. Printable ASCII without spaces.
    #[serde(default)]
    pub(super) key_prefix: Option<String>,
    /// Webdis HTTP basic-auth user; give `password` too.
    #[serde(default)]
    pub(super) username: Option<String>,
    /// Webdis HTTP basic-auth password; give `username` too. Never logged.
    #[serde(default)]
    pub(super) password: Option<super::Secret>,
}

/// Route prefixes the filter guards: a request under one needs a `sid` cookie or a Bearer
/// access token issued to a configured client, verified locally, and goes upstream with the
/// identity headers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ProtectedRoutes")
)]
pub(super) struct RawProtectedRoutes {
    /// Path prefixes, under `servicePrefix`; matched in any case. `/protected/` does not cover
    /// `/protected` itself.
    #[cfg_attr(
        feature = "schema",
        schemars(length(min = 1), inner(pattern(r"^/[^?# ]*$")))
    )]
    pub(super) prefixes: Vec<String>,
    /// Browser navigations (`Accept: text/html`) without a valid token get a 302 to
    /// `/authorize` instead of 401.
    #[serde(default)]
    pub(super) redirect_to_login: bool,
    /// Names of the identity headers.
    #[serde(default)]
    pub(super) identity_headers: RawIdentityHeaders,
    /// How long a worker may answer a Bearer token from what it last read of the token's
    /// session: the longest a logout elsewhere goes unseen (0 reads it on every request).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 300), extend("default" = 5)))]
    pub(super) session_recheck_seconds: Option<u64>,
}

/// Names of the headers a protected request goes upstream with. Copies a client sends, in
/// any case and any mix of `-` and `_`, are removed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "IdentityHeaders")
)]
pub(super) struct RawIdentityHeaders {
    /// Header with the user id (the token's `sub`).
    #[serde(default = "default_user_id_header")]
    #[cfg_attr(
        feature = "schema",
        schemars(
            pattern(super::schema::HEADER_NAME),
            extend("x-checked-at-load-time" = super::schema::IDENTITY_HEADER_RULE)
        )
    )]
    pub(super) user_id: String,
    /// Header with the user's groups, comma-separated.
    #[serde(default = "default_groups_header")]
    #[cfg_attr(
        feature = "schema",
        schemars(
            pattern(super::schema::HEADER_NAME),
            extend("x-checked-at-load-time" = super::schema::IDENTITY_HEADER_RULE)
        )
    )]
    pub(super) groups: String,
    /// Header with the client type (the configured client's name).
    #[serde(default = "default_client_type_header")]
    #[cfg_attr(
        feature = "schema",
        schemars(
            pattern(super::schema::HEADER_NAME),
            extend("x-checked-at-load-time" = super::schema::IDENTITY_HEADER_RULE)
        )
    )]
    pub(super) client_type: String,
}

fn default_user_id_header() -> String {
    "x-auth0-user-id".into()
}
fn default_groups_header() -> String {
    "x-auth0-user-groups".into()
}
fn default_client_type_header() -> String {
    "x-auth0-client-type".into()
}

impl Default for RawIdentityHeaders {
    fn default() -> Self {
        RawIdentityHeaders {
            user_id: default_user_id_header(),
            groups: default_groups_header(),
            client_type: default_client_type_header(),
        }
    }
}

/// Who may call the user-management routes: a caller presenting one of `apiKeys`, or a
/// selected client of one of `clientTypes`; both empty: any selected client. Anyone else
/// gets 403 (401 without a known client).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ManagementAccess")
)]
pub(super) struct RawManagementAccess {
    /// Clients allowed on the management routes.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(extend("x-checked-at-load-time" = "each a key of `clients`"))
    )]
    pub(super) client_types: Vec<String>,
    /// API keys (in the `secret` or `client-key` header) allowed on the management routes.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(inner(length(min = 1))))]
    pub(super) api_keys: Vec<Secret>,
}

/// An Auth0 application (Regular Web Application) the filter logs users in with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "Client")
)]
pub(super) struct RawClient {
    /// The tenant's URL, e.g. `https://tenant.eu.auth0.com/`.
    #[cfg_attr(
        feature = "schema",
        schemars(
            pattern(super::schema::TENANT_URL),
            extend(
                "x-checked-at-load-time" = "a valid host (and port), listed in `auth0Clusters`"
            )
        )
    )]
    pub(super) auth0_url: String,
    /// The application's client id.
    #[cfg_attr(feature = "schema", schemars(pattern(super::schema::NOT_BLANK)))]
    pub(super) client_id: String,
    /// The application's client secret. Never logged.
    #[cfg_attr(feature = "schema", schemars(pattern(super::schema::NOT_BLANK)))]
    pub(super) client_secret: Secret,
    /// Auth0's callback: where Auth0 sends the browser back after `/authorize`.
    #[cfg_attr(feature = "schema", schemars(pattern(super::schema::NOT_BLANK)))]
    pub(super) redirect_url: String,
    /// Scopes asked of Auth0; `openid` is always added. The pseudo-scope `website` makes
    /// logins answer with a `sid` session cookie instead of the tokens.
    #[cfg_attr(feature = "schema", schemars(inner(pattern(r"^ *[!-~][ -~]*$"))))]
    pub(super) scopes: Vec<String>,
    /// The API identifier sent to Auth0, and the audience access tokens must carry on
    /// protected routes (Auth0's `/userinfo` audience without one).
    #[serde(default)]
    pub(super) audience: Option<String>,
    /// Connections a login may name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(inner(pattern(super::schema::NOT_BLANK))))]
    pub(super) supported_connections: Vec<String>,
    /// The connection of a login that names none. Empty means none.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(extend(
            "x-checked-at-load-time" = "one of `supportedConnections`, or empty"
        ))
    )]
    pub(super) default_connection: Option<String>,
    /// The `sid` cookie's `SameSite` attribute; none by default.
    #[serde(default)]
    pub(super) same_site: Option<SameSite>,
    /// `/authorize` requires the caller's `state` and hands it back.
    #[serde(default)]
    pub(super) authorize_state_required: bool,
    /// Algorithms this client's tokens may be signed with; empty means RS256. Tokens are
    /// verified with RS256, RS512 and PS256 only (Auth0's RSA algorithms): the others are
    /// accepted here but refused on tokens, so the list must name at least one of those.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(transform = super::schema::signing_algorithms))]
    pub(super) supported_signing_algs: Vec<String>,
}

/// The Machine-to-Machine application the filter calls Auth0's Management API with, and the
/// connections the user-management routes use: either `supportedConnectionsMap` with
/// `defaultManagementConnectionName`, or the deprecated `supportedConnections` with
/// `defaultCreateUserConnection`, not both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "ManagementClient",
        transform = super::schema::management_connection_forms
    )
)]
pub(super) struct RawManagementClient {
    /// The tenant's URL, e.g. `https://tenant.eu.auth0.com/`.
    #[cfg_attr(
        feature = "schema",
        schemars(
            pattern(super::schema::TENANT_URL),
            extend(
                "x-checked-at-load-time" = "a valid host (and port), listed in `auth0Clusters`"
            )
        )
    )]
    pub(super) auth0_url: String,
    /// The application's client id.
    #[cfg_attr(feature = "schema", schemars(pattern(super::schema::NOT_BLANK)))]
    pub(super) client_id: String,
    /// The application's client secret. Never logged.
    #[cfg_attr(feature = "schema", schemars(pattern(super::schema::NOT_BLANK)))]
    pub(super) client_secret: Secret,
    // Deprecated form.
    /// The connections the management routes may use.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("deprecated" = true)))]
    pub(super) supported_connections: Option<Vec<String>>,
    /// The connection `POST /users` uses when the body names none.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(extend(
            "deprecated" = true,
            "x-checked-at-load-time" = "one of `supportedConnections`, or empty"
        ))
    )]
    pub(super) default_create_user_connection: Option<String>,
    // Current form.
    /// The connection `POST /users` and `POST /users/import` use when the request names none.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(extend(
            "x-checked-at-load-time" = "a key of `supportedConnectionsMap`, or empty"
        ))
    )]
    pub(super) default_management_connection_name: Option<String>,
    /// The connections the management routes may use, by name, with their Auth0 ids.
    #[serde(default)]
    pub(super) supported_connections_map: Option<SmallMap<RawConnectionRef>>,
    /// The original's own documentation examples put this flag here although its schema only
    /// allows it on a client; it is accepted so those files load unchanged, and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    #[cfg_attr(feature = "schema", schemars(extend("deprecated" = true)))]
    pub(super) authorize_state_required: Option<bool>,
}

/// An Auth0 connection the management routes may use.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ConnectionRef")
)]
pub(super) struct RawConnectionRef {
    /// The connection's Auth0 id (`con_…`).
    #[cfg_attr(feature = "schema", schemars(pattern(super::schema::NOT_BLANK)))]
    pub(super) connection_id: String,
}

/// An API key and the client it selects.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ApiKey")
)]
pub(super) struct RawApiKey {
    /// The key, as sent in the `secret` or `client-key` header. Never logged.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub(super) key: Secret,
    /// The client a request with this key is served as.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("x-checked-at-load-time" = "a key of `clients`"))
    )]
    pub(super) client_type: String,
}

/// Where each route is served, under `servicePrefix`: each a list of paths starting with `/`,
/// without a trailing `/`. Changed paths also need Envoy routes on which the filter runs.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "Paths",
        extend("x-checked-at-load-time" = "no path serves two routes")
    )
)]
pub(super) struct RawPaths {
    /// `POST`: password login and code exchange.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(inner(pattern(super::schema::ROUTE_PATH)), extend("default" = ["/oauth/token"]))
    )]
    pub(super) token: Option<Vec<String>>,
    /// `POST`: refresh.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(inner(pattern(super::schema::ROUTE_PATH)), extend("default" = ["/refreshtoken"]))
    )]
    pub(super) refresh_token: Option<Vec<String>>,
    /// `GET`: logout.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(inner(pattern(super::schema::ROUTE_PATH)), extend("default" = ["/logout"]))
    )]
    pub(super) logout: Option<Vec<String>>,
    /// The base of every user-management route (`GET`, `POST` and `<base>/…`); served only
    /// with `managementAccess`.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(inner(pattern(super::schema::ROUTE_PATH)), extend("default" = ["/users"]))
    )]
    pub(super) users: Option<Vec<String>>,
    /// `GET`: the browser login.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(inner(pattern(super::schema::ROUTE_PATH)), extend("default" = ["/authorize"]))
    )]
    pub(super) authorize: Option<Vec<String>>,
    /// `GET`: the session's identity.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            inner(pattern(super::schema::ROUTE_PATH)),
            extend("default" = ["/userinfo", "/users/me"])
        )
    )]
    pub(super) userinfo: Option<Vec<String>>,
    /// `GET`: the OpenAPI description; served only with `serveDocumentation`.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            inner(pattern(super::schema::ROUTE_PATH)),
            extend("default" = ["/documentation/json"])
        )
    )]
    pub(super) documentation: Option<Vec<String>>,
}
