//! Request bodies and Kubernetes manifests the tests share.

#![allow(dead_code)]

use std::path::PathBuf;

/// The `content-type` of the bodies `multipart` makes.
pub const MULTIPART: (&str, &str) = ("content-type", "multipart/form-data; boundary=XbOuNdArY");

/// A multipart/form-data body of `(name, file name, data)` parts; a file part is JSON.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(
            format!("--XbOuNdArY\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = filename {
            body.extend_from_slice(
                format!("; filename=\"{f}\"\r\nContent-Type: application/json").as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XbOuNdArY--\r\n");
    body
}

/// Every Kubernetes document (one with a `kind`) of the `.yaml` files in `dir`, the files in
/// name order (the order `kubectl apply -f dir` takes them).
pub fn manifest_documents(dir: &std::path::Path) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("manifest");
            serde_yaml_ng::Deserializer::from_str(&text)
                .map(|document| serde_json::Value::deserialize(document).expect("a YAML document"))
                .collect::<Vec<_>>()
        })
        .filter(|d| d.get("kind").is_some())
        .collect()
}

/// The one document of `kind` named `name`.
pub fn manifest_named<'a>(
    documents: &'a [serde_json::Value],
    kind: &str,
    name: &str,
) -> &'a serde_json::Value {
    let found: Vec<&serde_json::Value> = documents
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind} {name}");
    found[0]
}
