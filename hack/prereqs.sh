#!/usr/bin/env bash
# Checks, before anything is built, that this machine has what `make demo`/`make up` (`demo`) or
# `make test` (`test`) need, and says in one line per gap what is missing and how to get it.
#
# Usage: hack/prereqs.sh demo|test
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib.sh
. "$ROOT/hack/lib.sh"
target=${1:-}
case $target in demo | test) ;; *) echo "usage: hack/prereqs.sh demo|test" >&2; exit 2 ;; esac

missing=()
lack() { missing+=("$*"); }

# The newest `go` directive among the Go modules this target builds.
go_modules=("$ROOT/hack/controlplane")
[ "$target" = demo ] || go_modules+=("$ROOT/hack/prometheus" "$ROOT/hack/helm")
go_required=$(awk '$1 == "go" { print $2 }' "${go_modules[@]/%//go.mod}" | sort -V | tail -n 1)
rust_required=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")

at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; } # version, minimum

if ! command -v go >/dev/null; then
  lack "Go $go_required or newer (go): https://go.dev/doc/install"
else
  go_found=$(go env GOVERSION)
  at_least "${go_found#go}" "$go_required" ||
    lack "Go $go_required or newer (found $go_found; the builds use the local toolchain): https://go.dev/doc/install"
fi
if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
  lack "Rust $rust_required or newer (cargo, rustc): https://rustup.rs"
else
  rust_found=$(rustc --version | awk '{ print $2 }')
  at_least "$rust_found" "$rust_required" || lack "Rust $rust_required or newer (found $rust_found): rustup update stable"
  if [ "$target" = test ]; then
    cargo fmt --version >/dev/null 2>&1 || lack "rustfmt (cargo fmt): rustup component add rustfmt"
    cargo clippy --version >/dev/null 2>&1 || lack "clippy (cargo clippy): rustup component add clippy"
  fi
fi
command -v cc >/dev/null || lack "a C compiler and linker (cc) for Rust: sudo apt-get install gcc (or your system's equivalent)"
for tool in openssl curl python3; do
  command -v "$tool" >/dev/null || lack "$tool: sudo apt-get install $tool (or your system's equivalent)"
done
for tool in flock setsid sha256sum; do
  command -v "$tool" >/dev/null || lack "$tool: sudo apt-get install util-linux coreutils (or your system's equivalent)"
done

# Free disk for what is not built yet, with some room over what cold builds took: Go's module and
# build caches plus the binaries (Prometheus: 2.2 GiB; the control plane: ~3.5 GiB; Helm: 1.3 GiB), counted next to
# Go's build cache; target/ for cargo (1.9 GiB after `make test`).
gib=$((1024 * 1024)) # in KiB
declare -A need_kib=() # by directory
if command -v go >/dev/null; then
  gocache=$(go env GOCACHE)
  [ -d "$("$ROOT/hack/local-cluster.sh" cache-dir)" ] || need_kib[$gocache]=$((4 * gib))
  [ "$target" = demo ] || [ -d "$("$ROOT/hack/prometheus.sh" cache-dir)" ] ||
    need_kib[$gocache]=$((${need_kib[$gocache]:-0} + 3 * gib))
  [ "$target" = demo ] || [ -d "$("$ROOT/hack/helm.sh" cache-dir)" ] ||
    need_kib[$gocache]=$((${need_kib[$gocache]:-0} + 2 * gib))
fi
compgen -G "$ROOT/target/debug/deps/*" >/dev/null || need_kib[$ROOT/target]=$((3 * gib))
declare -A need_on=() free_on=() # by mount point
for dir in "${!need_kib[@]}"; do
  existing=$dir
  while [ ! -d "$existing" ]; do existing=$(dirname "$existing"); done
  read -r free mount < <(df -Pk "$existing" | awk 'NR == 2 { print $4, $6 }')
  need_on[$mount]=$((${need_on[$mount]:-0} + need_kib[$dir]))
  free_on[$mount]=$free
done
for mount in "${!need_on[@]}"; do
  ((free_on[$mount] >= need_on[$mount])) ||
    lack "$((need_on[$mount] / gib)) GiB free on $mount for the first builds (Go caches, target/): $((free_on[$mount] / gib)) GiB free there now"
done

if [ ${#missing[@]} -gt 0 ]; then
  for gap in "${missing[@]}"; do
    printf 'make %s needs %s\n' "$target" "$gap" >&2
  done
  exit 1
fi
step "prerequisites for make $target: all present (Go ${go_found#go}, Rust $rust_found)"
