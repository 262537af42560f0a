//! `istio/oci_image.py` (`make oci`): reads the OCI image layout back the way a registry client
//! does, index.json → manifest → config and layer, checking every digest and size, and
//! extracts `plugin.wasm`, which must be the built .wasm byte for byte. Needs WASM_PATH (set by
//! `make test`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::repo;
use serde_json::Value;

fn wasm_path() -> PathBuf {
    let path = PathBuf::from(std::env::var("WASM_PATH").expect("WASM_PATH (make test sets it)"));
    if path.is_absolute() {
        path
    } else {
        repo().join(path)
    }
}

fn build_image(out: &Path) {
    let status = Command::new("python3")
        .arg(repo().join("istio/oci_image.py"))
        .arg(wasm_path())
        .arg(out)
        .status()
        .expect("python3");
    assert!(status.success(), "oci_image.py failed");
}

fn sha256_hex(data: &[u8]) -> String {
    hmac_sha256::Hash::hash(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The blob a descriptor names, after checking its digest and size.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let data = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob");
    assert_eq!(sha256_hex(&data), hex, "digest of {digest}");
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(data.len() as u64),
        "size of {digest}"
    );
    data
}

fn json(data: &[u8]) -> Value {
    serde_json::from_slice(data).expect("JSON")
}

#[test]
fn the_image_layout_holds_the_built_wasm_as_istios_compat_variant() {
    let layout = repo().join("target/it/oci-image");
    build_image(&layout);

    let oci_layout = json(&std::fs::read(layout.join("oci-layout")).expect("oci-layout"));
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let index = json(&std::fs::read(layout.join("index.json")).expect("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1);
    let descriptor = &manifests[0];
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let tag = descriptor["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .expect("a tag");
    assert_eq!(tag, env!("CARGO_PKG_VERSION"));

    let manifest = json(&blob(&layout, descriptor));
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], descriptor["mediaType"]);
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"],
        "compat"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "auth0-filter"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        tag
    );

    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "the compat variant has exactly one layer");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(blob(&layout, &layers[0]).as_slice())
        .read_to_end(&mut tar_bytes)
        .expect("gzip");

    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config = json(&blob(&layout, &manifest["config"]));
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([format!("sha256:{}", sha256_hex(&tar_bytes))])
    );

    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut members = Vec::new();
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("tar entry");
        let name = entry.path().expect("path").to_string_lossy().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("member");
        members.push((name, data));
    }
    assert_eq!(members.len(), 1, "one file in the layer");
    assert_eq!(members[0].0, "plugin.wasm");
    let wasm = std::fs::read(wasm_path()).expect("the built .wasm");
    assert!(
        members[0].1 == wasm,
        "plugin.wasm differs from the built .wasm"
    );

    // Only the layout's own files and the three blobs.
    let mut blobs: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    blobs.sort();
    assert_eq!(blobs.len(), 3, "{blobs:?}");
}

#[test]
fn skopeo_copies_the_image_as_a_registry_client_would() {
    // An independent OCI implementation (containers/image, `make deps` installs skopeo)
    // resolves the tag, verifies every digest while copying, and keeps the manifest as is.
    let layout = repo().join("target/it/oci-skopeo");
    let copy = repo().join("target/it/oci-skopeo-copy");
    build_image(&layout);
    let _ = std::fs::remove_dir_all(&copy);
    let status = Command::new("skopeo")
        .arg("copy")
        .arg(format!(
            "oci:{}:{}",
            layout.display(),
            env!("CARGO_PKG_VERSION")
        ))
        .arg(format!("dir:{}", copy.display()))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("skopeo (make deps installs it)");
    assert!(status.success(), "skopeo copy failed");
    let index = json(&std::fs::read(layout.join("index.json")).expect("index.json"));
    let manifest = blob(&layout, &index["manifests"][0]);
    assert!(std::fs::read(copy.join("manifest.json")).expect("manifest.json") == manifest);
    let layer = &json(&manifest)["layers"][0];
    let hex = layer["digest"]
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .expect("digest");
    assert!(std::fs::read(copy.join(hex)).expect("layer") == blob(&layout, layer));
}

#[test]
fn the_image_is_reproducible() {
    let (first, second) = (
        repo().join("target/it/oci-repro-1"),
        repo().join("target/it/oci-repro-2"),
    );
    build_image(&first);
    build_image(&second);
    let read = |dir: &Path, file: &str| std::fs::read(dir.join(file)).expect(file);
    assert_eq!(read(&first, "index.json"), read(&second, "index.json"));
    let index = json(&read(&first, "index.json"));
    let digest = index["manifests"][0]["digest"].as_str().expect("digest");
    let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    assert_eq!(read(&first, &path), read(&second, &path));
}
