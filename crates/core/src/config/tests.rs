use super::*;
use crate::testing::{base_json, config_with};

fn parse(json: serde_json::Value) -> Result<Config, ConfigError> {
    Config::from_json(json.to_string().as_bytes())
}

fn with(mutate: impl FnOnce(&mut serde_json::Value)) -> Result<Config, ConfigError> {
    let mut json = base_json();
    mutate(&mut json);
    parse(json)
}

#[test]
fn accepts_the_original_catalog_default_shape() {
    // The catalog default of auth0-client 3.8.0, with empty defaultClient/defaultConnection.
    let json = serde_json::json!({
        "clients": {"cms": {
            "auth0Url": "https://tenant.eu.auth0.com/", "clientId": "id", "clientSecret": "s",
            "redirectUrl": "https://host/web-login/callback",
            "scopes": ["offline_access", "profile", "email", "website"],
            "audience": "https://aud", "supportedConnections": [], "defaultConnection": ""
        }},
        "defaultClient": "",
        "managementClient": {
            "auth0Url": "https://tenant.eu.auth0.com/", "clientId": "m", "clientSecret": "ms",
            "supportedConnectionsMap": {"foo": {"connectionId": "bar"}},
            "defaultManagementConnectionName": "foo",
            "authorizeStateRequired": true
        },
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata", "https://mia-platform.eu/user_metadata"],
        "auth0Clusters": {"tenant.eu.auth0.com": "auth0"}
    });
    let config = parse(json).unwrap();
    assert_eq!(config.default_client, None);
    let cms = &config.clients["cms"];
    assert_eq!(cms.default_connection, None);
    assert!(cms.is_website());
    assert_eq!(config.session_duration_seconds, 86_400);
    assert!(!config.logout_client_id_enabled);
    assert_eq!(config.original_protocol_header, "x-forwarded-proto");
}

#[test]
fn auth0_url_with_or_without_trailing_slash_is_the_same_endpoint() {
    let config = config_with(serde_json::json!({}));
    assert_eq!(config.clients["web"].auth0, config.clients["app"].auth0);
    assert_eq!(
        config.clients["web"].auth0.path("/oauth/token"),
        "/oauth/token"
    );
    assert_eq!(
        config.clients["web"].auth0.public_url("/v2/logout"),
        "https://tenant.eu.auth0.com/v2/logout"
    );
    assert_eq!(config.clients["web"].auth0.cluster, "auth0");
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    let err = with(|j| j["clients"]["web"]["clientSecrett"] = "x".into()).unwrap_err();
    assert_eq!(err.field, "clients.web.clientSecrett");
    assert!(err.problem.contains("unknown field"), "{err}");
    let err = with(|j| j["sessionDuration"] = 5.into()).unwrap_err();
    assert!(err.problem.contains("sessionDuration"), "{err}");
}

#[test]
fn an_error_under_an_empty_top_level_key_still_names_a_field() {
    // Found by fuzzing: serde_path_to_error shows the path of the key `""` as an empty string.
    for bytes in [&br#"{"" {"#[..], br#"{"": 1}"#, br#"{"":"#] {
        let error = Config::from_json(bytes).unwrap_err();
        assert_eq!(
            error.field,
            "(root)",
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn default_connection_must_be_supported() {
    let err = with(|j| j["clients"]["web"]["defaultConnection"] = "other".into()).unwrap_err();
    assert_eq!(err.field, "clients.web.defaultConnection");
}

#[test]
fn required_fields_are_named() {
    let err = with(|j| {
        j["clients"]["web"]
            .as_object_mut()
            .unwrap()
            .remove("clientId");
    })
    .unwrap_err();
    assert_eq!(err.field, "clients.web");
    assert!(err.problem.contains("clientId"));
    let err = with(|j| j["clients"]["web"]["clientSecret"] = "".into()).unwrap_err();
    assert_eq!(err.field, "clients.web.clientSecret");
    let err = with(|j| {
        j.as_object_mut().unwrap().remove("managementClient");
    })
    .unwrap_err();
    assert!(err.problem.contains("managementClient"));
}

#[test]
fn signing_algorithms_must_include_one_tokens_are_verified_with() {
    let algs = |list: serde_json::Value| {
        with(|j| j["clients"]["web"]["supportedSigningAlgs"] = list).map(|_| ())
    };
    let err = algs(serde_json::json!(["HS256", "RS384"])).unwrap_err();
    assert_eq!(err.field, "clients.web.supportedSigningAlgs");
    assert!(
        err.problem.contains("RS256, RS512, PS256"),
        "{}",
        err.problem
    );
    let err = algs(serde_json::json!(["RS256", "XS1"])).unwrap_err();
    assert_eq!(err.field, "clients.web.supportedSigningAlgs[1]");
    for ok in [
        serde_json::json!([]),
        serde_json::json!(["PS256"]),
        serde_json::json!(["RS384", "RS512"]),
    ] {
        assert!(algs(ok.clone()).is_ok(), "{ok}");
    }
}

#[test]
fn same_site_must_be_lax_strict_or_none() {
    let err = with(|j| j["clients"]["web"]["sameSite"] = "lax".into()).unwrap_err();
    assert_eq!(err.field, "clients.web.sameSite");
    for ok in ["Lax", "Strict", "None"] {
        assert!(with(|j| j["clients"]["web"]["sameSite"] = ok.into()).is_ok());
    }
}

#[test]
fn every_auth0_host_needs_a_cluster() {
    let err =
        with(|j| j["clients"]["app"]["auth0Url"] = "https://other.auth0.com".into()).unwrap_err();
    assert_eq!(err.field, "clients.app.auth0Url");
    assert!(err.problem.contains("auth0Clusters"));
}

#[test]
fn default_client_must_exist() {
    let err = with(|j| j["defaultClient"] = "nope".into()).unwrap_err();
    assert_eq!(err.field, "defaultClient");
}

#[test]
fn management_forms_cannot_be_mixed_and_defaults_must_exist() {
    let err = with(|j| j["managementClient"]["supportedConnections"] = serde_json::json!(["a"]))
        .unwrap_err();
    assert_eq!(err.field, "managementClient");
    let err = with(|j| j["managementClient"]["defaultManagementConnectionName"] = "x".into())
        .unwrap_err();
    assert_eq!(
        err.field,
        "managementClient.defaultManagementConnectionName"
    );
    let err = with(|j| {
        let m = j["managementClient"].as_object_mut().unwrap();
        m.remove("supportedConnectionsMap");
        m.remove("defaultManagementConnectionName");
        m.insert("supportedConnections".into(), serde_json::json!(["a"]));
        m.insert("defaultCreateUserConnection".into(), "b".into());
    })
    .unwrap_err();
    assert_eq!(err.field, "managementClient.defaultCreateUserConnection");
}

#[test]
fn api_keys_must_name_a_client_and_are_not_kept_in_clear() {
    let err = with(|j| j["apiKeys"] = serde_json::json!([{"key": "k", "clientType": "nope"}]))
        .unwrap_err();
    assert_eq!(err.field, "apiKeys[0].clientType");
    let config = config_with(
        serde_json::json!({"apiKeys": [{"key": "super-secret-key", "clientType": "web"}]}),
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("super-secret-key"));
    assert!(!debug.contains("web-client-secret"));
}

#[test]
fn env_var_fields_and_gateway_fields_are_read() {
    let config = config_with(serde_json::json!({
        "sessionDurationSeconds": 60, "logoutClientIdEnabled": true, "servicePrefix": "/auth/",
        "originalProtocolHeader": "X-Original-Proto", "calloutTimeoutMs": 900,
        "allowedRedirectHosts": ["App.Example.org"], "sessionScope": "prod",
        "paths": {"refreshToken": ["/refreshtoken", "/oauth/refreshtoken"]}
    }));
    assert_eq!(config.session_duration_seconds, 60);
    assert!(config.logout_client_id_enabled);
    assert_eq!(config.original_protocol_header, "x-original-proto");
    assert_eq!(config.callout_timeout_ms, 900);
    assert_eq!(
        config.allowed_redirect_hosts,
        vec!["app.example.org".to_string()]
    );
    assert_eq!(config.session_scope, "prod");
    assert!(config
        .routes
        .classify("POST", "/auth/oauth/refreshtoken")
        .is_some());
    assert!(config
        .routes
        .classify("POST", "/auth/oauth/token")
        .is_some());
}

#[test]
fn bad_numbers_and_prefixes_are_refused() {
    for (field, value) in [
        ("calloutTimeoutMs", serde_json::json!(0)),
        ("maxBodyBytes", serde_json::json!(10)),
        ("sessionDurationSeconds", serde_json::json!(0)),
        ("servicePrefix", serde_json::json!("auth")),
        ("allowedRedirectHosts", serde_json::json!(["evil.com/x"])),
        ("originalProtocolHeader", serde_json::json!("x proto")),
    ] {
        let err = with(|j| j[field] = value).unwrap_err();
        assert!(err.field.starts_with(field), "{field}: {err}");
    }
}

#[test]
fn wrong_types_name_the_field() {
    let err = with(|j| j["clients"]["web"]["scopes"] = "openid".into()).unwrap_err();
    assert_eq!(err.field, "clients.web.scopes");
    let err = parse(serde_json::json!("not an object")).unwrap_err();
    assert_eq!(err.field, "(root)");
    assert!(Config::from_json(b"{not json").is_err());
}

#[test]
fn scope_is_openid_plus_scopes_minus_website_deduplicated() {
    let config = config_with(serde_json::json!({}));
    assert_eq!(
        config.clients["web"].auth0_scope(),
        "openid offline_access profile email"
    );
    assert_eq!(
        config.clients["app"].auth0_scope(),
        "openid offline_access profile"
    );
}

#[test]
fn error_display_is_one_line_naming_the_field() {
    let err = with(|j| j["clients"]["web"]["sameSite"] = "lax".into()).unwrap_err();
    let line = err.to_string();
    assert!(line.starts_with("invalid plugin configuration: clients.web.sameSite: "));
    assert!(!line.contains('\n'));
}

#[test]
fn auth0_urls_are_plain_absolute_urls() {
    for bad in [
        "tenant.eu.auth0.com",
        "ftp://tenant.eu.auth0.com",
        "https://user@tenant.eu.auth0.com",
        "https://tenant.eu.auth0.com/?x=1",
        "https://tenant.eu.auth0.com#f",
        "https://tenant.eu.auth0.com:99999/",
        "https://:443/",
        "https://ten ant.eu.auth0.com/",
        "https:///path",
    ] {
        let err = with(|j| j["clients"]["app"]["auth0Url"] = bad.into()).unwrap_err();
        assert_eq!(err.field, "clients.app.auth0Url", "{bad}: {err}");
    }
    // Default ports are dropped, explicit ones kept; a path prefix is kept without its slash.
    let config = with(|j| {
        j["clients"]["app"]["auth0Url"] = "HTTPS://Tenant.EU.auth0.com:443/".into();
        j["clients"]["web"]["auth0Url"] = "http://127.0.0.1:8081/auth0/".into();
        j["auth0Clusters"]["127.0.0.1:8081"] = "local".into();
    })
    .unwrap();
    assert_eq!(config.clients["app"].auth0.authority, "tenant.eu.auth0.com");
    let web = &config.clients["web"].auth0;
    assert_eq!(
        (
            web.authority.as_str(),
            web.cluster.as_str(),
            web.scheme.as_str()
        ),
        ("127.0.0.1:8081", "local", "http")
    );
    assert_eq!(web.path("/oauth/token"), "/auth0/oauth/token");
    assert_eq!(
        web.public_url("/v2/logout"),
        "http://127.0.0.1:8081/auth0/v2/logout"
    );
}

#[test]
fn type_errors_on_secrets_do_not_quote_the_value() {
    let err = with(|j| j["clients"]["web"]["clientSecret"] = 987_654_321.into()).unwrap_err();
    assert_eq!(err.field, "clients.web.clientSecret");
    assert!(!err.to_string().contains("987654321"), "{err}");
    let err =
        with(|j| j["apiKeys"] = serde_json::json!([{"key": 123_456_789, "clientType": "web"}]))
            .unwrap_err();
    assert_eq!(err.field, "apiKeys[0].key");
    assert!(!err.to_string().contains("123456789"), "{err}");
}

#[test]
fn identity_headers_are_known_in_each_spelling() {
    let config = with(|v| {
        v["protectedRoutes"] = serde_json::json!({"prefixes": ["/api/"]});
    })
    .expect("valid config");
    let protected = config.protected.expect("protected routes");
    for name in [
        "x-auth0-user-id",
        "x_auth0_user_id",
        "X-Auth0-User-Groups",
        "x_auth0-user_groups",
        "x-auth0-client-type",
        "x_auth0_client_type",
    ] {
        assert!(protected.is_identity_header(name), "{name}");
    }
    for name in [
        "x-auth0-user-i",
        "x-auth0-user-idx",
        "x.auth0.user.id",
        "authorization",
    ] {
        assert!(!protected.is_identity_header(name), "{name}");
    }
}

#[test]
fn body_reading_defaults_to_stop_iteration_and_takes_hold_filter() {
    let config = config_with(serde_json::json!({}));
    assert_eq!(config.body_reading, BodyReading::StopIteration);
    let config = config_with(serde_json::json!({"bodyReading": "holdFilter"}));
    assert_eq!(config.body_reading, BodyReading::HoldFilter);
    let err = with(|v| v["bodyReading"] = serde_json::json!("buffer")).unwrap_err();
    assert_eq!(err.field, "bodyReading");
}

#[test]
fn a_plugin_is_a_hold_instance_only_with_the_hold_role_alone() {
    assert!(matches!(
        Plugin::from_json(br#"{"role": "hold"}"#),
        Ok(Plugin::Hold)
    ));
    let filter = Plugin::from_json(base_json().to_string().as_bytes());
    assert!(matches!(filter, Ok(Plugin::Filter(_))));
    let err = Plugin::from_json(br#"{"role": "filter"}"#).unwrap_err();
    assert_eq!(err.field, "role");
    let err = Plugin::from_json(br#"{"role": "hold", "clients": {}}"#).unwrap_err();
    assert_eq!(err.field, "role");
    let mut with_role = base_json();
    with_role["role"] = serde_json::json!("hold");
    assert!(Plugin::from_json(with_role.to_string().as_bytes()).is_err());
    assert_eq!(Plugin::from_json(b"{").unwrap_err().field, "(root)");
    // A filter configuration is checked as `Config::from_json` checks it.
    let bad = serde_json::json!({"clients": {}, "bodyReading": "holdFilter"}).to_string();
    assert_eq!(
        Plugin::from_json(bad.as_bytes()).unwrap_err().to_string(),
        Config::from_json(bad.as_bytes()).unwrap_err().to_string()
    );
}
