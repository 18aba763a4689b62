# The stable interface for people and scripts. See README.md.
SHELL := bash
CARGO ?= cargo
export DEVPORTAL_LOCAL_DIR ?= $(CURDIR)/target/local
# One clock for the progress lines of everything a target runs ([+1m05s] ...).
ifndef DEVPORTAL_T0
export DEVPORTAL_T0 := $(shell date +%s)
endif
STEP := @hack/lib.sh step
# The steps share 2 cores' worth of builds at best; run them one after another, in the order given.
.NOTPARALLEL:

.PHONY: help up down status demo test lint unit crds chart controlplane prometheus helm image install

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

up: ## build devportal, start the local control plane and `devportal run` (webhook and controller) in the background, install CRDs, RBAC and the webhook configurations (idempotent)
	@hack/prereqs.sh demo
	$(STEP) "building devportal (cargo build; a first build compiles ~300 crates, cargo shows its progress)"
	$(CARGO) build
	DEVPORTAL_BIN=$(CURDIR)/target/debug/devportal hack/local-cluster.sh up

down: ## stop everything `make up` started
	hack/local-cluster.sh down

status: ## is the local control plane running?
	hack/local-cluster.sh status

demo: ## the main job end to end on the local control plane (KEEP=1 leaves it running)
	@hack/prereqs.sh demo
	hack/demo.sh

test: ## the whole test suite: lint, unit and integration tests against a real control plane (the image's own check is `make image`)
	@hack/prereqs.sh test
	CARGO=$(CARGO) hack/test.sh
	hack/local-cluster.sh sweep
	$(STEP) "make test passed"

lint: ## rustfmt and clippy, warnings are errors
	$(STEP) "checking formatting and lints (cargo fmt, cargo clippy: a first run checks ~300 crates without building them, which cargo test then builds; README.md gives the times)"
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit: ## only the fast tests that need no control plane
	$(CARGO) test --lib

crds: ## regenerate crds/ from the Rust types (and the chart's copy of them)
	$(CARGO) run --quiet -- crds --out-dir crds
	hack/chart.sh generate

controlplane: ## build (or reuse cached) etcd, kube-apiserver, kube-controller-manager and kubectl
	hack/local-cluster.sh build

prometheus: ## build (or reuse cached) prometheus and promtool for the metrics tests
	hack/prometheus.sh build

helm: ## build (or reuse cached) helm for the chart's tests (tests/serial/helm.rs)
	hack/helm.sh build

chart: ## regenerate charts/devportal from manifests/ and crds/ (after changing either)
	hack/chart.sh generate

install: ## install devportal and the kubectl plugin kubectl-devportal into ~/.cargo/bin (cargo install --path .), so `kubectl devportal` works with that directory on PATH (docs/kubectl-plugin.md)
	$(STEP) "installing devportal and kubectl-devportal (cargo install --path . --locked: a release build, into $${CARGO_HOME:-$$HOME/.cargo}/bin)"
	DEVPORTAL_BUILD_DATE=$$(date -u +%Y-%m-%dT%H:%M:%SZ) $(CARGO) install --path . --locked
	$(STEP) "installed devportal and kubectl-devportal into $${CARGO_HOME:-$$HOME/.cargo}/bin: with it on PATH, run kubectl devportal --help"

image: ## the container image, without a container engine: a static fat-LTO release binary on an empty base, in target/image/ as an OCI layout and a `docker load` archive; reproducible (docs/install.md); then its check (tests/it/image.rs) against the local control plane
	hack/image.sh build
	@$(MAKE) --no-print-directory controlplane
	$(STEP) "checking the image: its layout, files and config, and its binary running devportal run on a local control plane (cargo test --test it image:: -- --ignored: packs the image again from the same build)"
	$(CARGO) test --test it image:: -- --ignored
