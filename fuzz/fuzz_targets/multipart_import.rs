//! `POST /users/import`: `boundary_of`, the multipart parser, the builder, and the whole
//! rewriting of the client's body into Auth0's `users-imports` job request.
#![no_main]

use std::sync::OnceLock;

use auth0_filter_core::config::Config;
use auth0_filter_core::fuzz_entry::import_users;
use auth0_filter_core::http::multipart::{boundary_of, build, parse, Part};
use auth0_filter_fuzz::{fields, optional, tenant_config};
use libfuzzer_sys::fuzz_target;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let mut json = tenant_config();
        json["managementClient"]["supportedConnectionsMap"] = serde_json::json!({
            "db-a": {"connectionId": "con_0000000000000001"},
            "db-b": {"connectionId": "con_0000000000000002"}
        });
        json["managementClient"]["defaultManagementConnectionName"] = "db-a".into();
        Config::from_json(json.to_string().as_bytes()).expect("the fuzz config is valid")
    })
}

/// What a part looks like after `build` then `parse`: the builder replaces `"`, CR and LF in
/// names, filenames and content types (they cannot stand in a quoted header value).
fn rebuilt(part: &Part) -> Part {
    let quoted = |v: &str| v.replace(['"', '\r', '\n'], "_");
    Part {
        name: quoted(&part.name),
        filename: part.filename.as_deref().map(quoted),
        content_type: part
            .content_type
            .as_deref()
            .map(|v| quoted(v).trim().to_string()),
        data: part.data.clone(),
    }
}

// Input: `content type 0xFF body` (the body may hold 0xFF bytes).
fuzz_target!(|data: &[u8]| {
    let [content_type, body] = fields(data);
    let Some(content_type) = optional(content_type) else {
        return;
    };
    if let Ok(boundary) = boundary_of(content_type) {
        assert!((1..=70).contains(&boundary.len()));
        assert!(!boundary.contains(['\r', '\n', '"']));
        if let Ok(parts) = parse(body, &boundary) {
            assert!(parts.len() <= 16);
            for part in &parts {
                assert!(!part.name.is_empty());
            }
            // The builder's body parses back to the same parts, whatever their data.
            let (body, new_boundary) = build(&parts, body);
            let content_type = format!("multipart/form-data; boundary={new_boundary}");
            assert_eq!(
                boundary_of(Some(&content_type)).ok(),
                Some(new_boundary.clone())
            );
            let expected: Vec<Part> = parts.iter().map(rebuilt).collect();
            let reparsed = parse(&body, &new_boundary).expect("built bodies parse");
            assert_eq!(reparsed, expected);
        }
    }

    match import_users(config(), content_type, body) {
        Ok((content_type, body)) => {
            // Auth0 gets a well-formed body with `users` and a configured `connection_id`.
            let content_type = content_type.expect("a content type");
            let boundary = boundary_of(Some(&content_type)).expect("a valid boundary");
            let parts = parse(&body, &boundary).expect("the rewritten body parses");
            assert_eq!(parts.first().map(|p| p.name.as_str()), Some("users"));
            let connection = parts
                .iter()
                .find(|p| p.name == "connection_id")
                .expect("connection_id");
            assert!(
                connection.data == b"con_0000000000000001"
                    || connection.data == b"con_0000000000000002"
            );
            assert!(parts.iter().all(|p| p.name != "connection"));
        }
        Err(error) => {
            assert!(matches!(error.status, 400 | 413 | 415), "{}", error.status);
            assert!(
                !error.message.chars().any(char::is_control),
                "{:?}",
                error.message
            );
        }
    }
});
