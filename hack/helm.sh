#!/usr/bin/env bash
# Helm for the chart's tests (tests/serial/helm.rs), built from the Go module in hack/helm
# (helm.sh/helm/v4, pinned with its go.sum) into a cache shared by every clone, once per version;
# and the chart charts/devportal, generated from manifests/ (hack/chart.sh).
#
# Usage: hack/helm.sh <command>
#   build      build unless cached
#   path       build unless cached, then print the path of the `helm` binary
#   cache-dir  print the cache directory without building (it may not exist yet)
#
# Environment:
#   DEVPORTAL_HELM_CACHE  binary cache (default: ~/.cache/devportal/helm)
#   DEVPORTAL_LOCAL_DIR   where the build logs go, under logs/ (default: <repo>/target/local)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib.sh
. "$ROOT/hack/lib.sh"
MODULE=$ROOT/hack/helm
CACHE=${DEVPORTAL_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devportal/helm}
LOGS=${DEVPORTAL_LOCAL_DIR:-$ROOT/target/local}/logs

# Measured with a warm Go module cache and an empty build cache: 4m59s on a 2-core machine busy with
# other builds (under nice); downloading the modules first adds a minute or two.
COLD_BUILD_ESTIMATE="~5 min on 2 cores, more on busy ones"

die() { step "error: $*"; exit 1; }

helm_version() { module_version "$MODULE" helm.sh/helm/v4; }

# `helm version` names the release it was built from, as the project's release builds do.
ldflags() { printf -- '-s -w -X helm.sh/helm/v4/internal/version.version=%s' "$(helm_version)"; }

cache_dir() {
  command -v go >/dev/null || die "Go is required to build Helm (https://go.dev/doc/install)"
  local version
  version=$(helm_version)
  [ -n "$version" ] || die "cannot read the helm.sh/helm/v4 version from $MODULE/go.mod"
  go_cache_dir "$CACHE" "$MODULE" "$version" "-ldflags $(ldflags)"
}

build_helm() ( # into
  cd "$MODULE"
  go_build_into "$1" "$LOGS/build-helm" "$(ldflags)" "" helm.sh/helm/v4/cmd/helm
)

# Prints the binary's path, building it first if needed; says where the cached one is unless told
# to be quiet.
build() { # loud|quiet
  local out version
  out=$(cache_dir)
  version=$(helm_version)
  if [ -d "$out" ]; then
    [ "$1" = quiet ] || step "Helm $version: cached build in $out"
  else
    step "building Helm $version from its Go module (hack/helm; first time only, $COLD_BUILD_ESTIMATE; cached afterwards)"
    cached_build "$out" "Helm" build_helm || die "building Helm failed"
  fi
  printf '%s/helm\n' "$out"
}

case ${1:-} in
  build) build loud >/dev/null ;;
  path) build quiet ;;
  cache-dir) cache_dir ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2 ;;
esac
