#!/usr/bin/env python3
"""Package the filter's .wasm as an OCI image layout directory that Istio's WasmPlugin can pull
(`url: oci://…`) once pushed to a registry: the "compat" variant of the Wasm image
specification, i.e. one `application/vnd.oci.image.layer.v1.tar+gzip` layer holding
`plugin.wasm`, and the manifest annotation `module.wasm.image/variant: compat`.

The output is byte-for-byte reproducible (fixed mtimes, owners and gzip header), so the same
.wasm always gives the same image digest.

Usage: oci_image.py WASM_PATH OUT_DIR [--tag TAG]   (TAG defaults to the crate version)
"""
import gzip
import hashlib
import io
import json
import pathlib
import shutil
import sys
import tarfile
import tomllib

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(wasm: bytes) -> bytes:
    """A tar with the single member `plugin.wasm`, owned by root, mtime 0."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size = len(wasm)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    return buffer.getvalue()


def gzipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    # No file name and mtime 0 in the gzip header, for a reproducible digest.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buffer.getvalue()


def write_blob(blobs: pathlib.Path, data: bytes, media_type: str, **extra) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    descriptor = {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}
    descriptor.update(extra)
    return descriptor


def main(argv):
    args = list(argv[1:])
    tag = None
    if "--tag" in args:
        at = args.index("--tag")
        tag = args[at + 1]
        del args[at : at + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    wasm_path, out = pathlib.Path(args[0]), pathlib.Path(args[1])
    wasm = wasm_path.read_bytes()
    if not wasm.startswith(b"\0asm"):
        sys.exit(f"{wasm_path} is not a WebAssembly module")
    if tag is None:
        cargo = pathlib.Path(__file__).resolve().parent.parent / "Cargo.toml"
        tag = tomllib.loads(cargo.read_text())["package"]["version"]

    # A fresh directory: blobs of an older build must not linger.
    shutil.rmtree(out, ignore_errors=True)
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    tar = layer_tar(wasm)
    layer = write_blob(blobs, gzipped(tar), LAYER_MEDIA_TYPE)
    config = write_blob(
        blobs,
        canonical(
            {
                "architecture": "wasm",
                "os": "wasip1",
                "config": {},
                "rootfs": {
                    "type": "layers",
                    "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"],
                },
            }
        ),
        CONFIG_MEDIA_TYPE,
    )
    manifest = write_blob(
        blobs,
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": config,
                "layers": [layer],
                "annotations": {
                    # The compat variant with an OCI layer media type must say so.
                    "module.wasm.image/variant": "compat",
                    "org.opencontainers.image.title": "auth0-filter",
                    "org.opencontainers.image.version": tag,
                },
            }
        ),
        MANIFEST_MEDIA_TYPE,
        annotations={"org.opencontainers.image.ref.name": tag},
    )
    (out / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
    (out / "index.json").write_bytes(
        canonical({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [manifest]})
    )
    print(f"{out}: {manifest['digest']} (tag {tag}, plugin.wasm {len(wasm)} bytes)")


if __name__ == "__main__":
    main(sys.argv)
