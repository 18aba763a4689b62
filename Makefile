# The stable interface for people and scripts. See README.md.
SHELL := bash
CARGO ?= cargo
export DEVPORTAL_LOCAL_DIR ?= $(CURDIR)/target/local

.PHONY: help up down status demo test lint unit crds controlplane image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

up: ## build devportal, start the local control plane and `devportal run` (webhook and controller) in the background, install CRDs, RBAC and the webhook configurations (idempotent)
	$(CARGO) build
	DEVPORTAL_BIN=$(CURDIR)/target/debug/devportal hack/local-cluster.sh up

down: ## stop everything `make up` started
	hack/local-cluster.sh down

status: ## is the local control plane running?
	hack/local-cluster.sh status

demo: ## the main job end to end on the local control plane (KEEP=1 leaves it running)
	hack/demo.sh

test: lint controlplane ## the whole test suite: lint, unit and integration tests against a real control plane
	$(CARGO) test
	hack/local-cluster.sh sweep

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit: ## only the fast tests that need no control plane
	$(CARGO) test --lib

crds: ## regenerate crds/ from the Rust types
	$(CARGO) run --quiet -- crds --out-dir crds

controlplane: ## build (or reuse cached) etcd, kube-apiserver, kube-controller-manager and kubectl
	hack/local-cluster.sh build

image: ## the container image, without a container engine: a static release binary on an empty base, in target/image/ as an OCI layout and a `docker load` archive; reproducible (docs/install.md)
	hack/image.sh build
