# CI's stand-in for emulator/Dockerfile (tests/compose/run.sh): its runtime stage, on the local
# Debian base, with the binary `make emulator` built on the host (no Rust image is needed).
# Build context: a folder holding only the `auth0-emulator` binary.
ARG BASE
FROM ${BASE}
COPY auth0-emulator /usr/local/bin/auth0-emulator
USER 65534:65534
ENTRYPOINT ["auth0-emulator"]
