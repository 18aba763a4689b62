#!/usr/bin/env bash
# Prometheus and promtool for the metrics tests, built from the Go module in hack/prometheus
# (github.com/prometheus/prometheus, pinned with its go.sum) into a cache shared by every clone,
# once per version. Without the web UI assets (no `builtinassets` tag) and without the cloud
# service discoveries (`remove_all_sd`: static and file targets remain, ~200 packages of cloud SDKs
# go); the server, its API and promtool are otherwise complete.
#
# Usage: hack/prometheus.sh <command>
#   build   build unless cached
#   path    build unless cached, then print the directory holding `prometheus` and `promtool`
#   cache-dir  print that directory without building (it may not exist yet)
#
# Environment:
#   DEVPORTAL_PROMETHEUS_CACHE  binary cache (default: ~/.cache/devportal/prometheus)
#   DEVPORTAL_LOCAL_DIR         where the build logs go, under logs/ (default: <repo>/target/local)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib.sh
. "$ROOT/hack/lib.sh"
MODULE=$ROOT/hack/prometheus
CACHE=${DEVPORTAL_PROMETHEUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devportal/prometheus}
LOGS=${DEVPORTAL_LOCAL_DIR:-$ROOT/target/local}/logs

# Measured with an empty Go module and build cache: 11m32s on a 2-core machine busy with other
# builds, 7 min of CPU time.
COLD_BUILD_ESTIMATE="~5 min on 2 idle cores, ~12 on busy ones"

die() { step "error: $*"; exit 1; }

# The Go module's version, v0.312.0, is Prometheus 3.12.0.
prometheus_version() { module_version "$MODULE" github.com/prometheus/prometheus; }
release() { # module version
  local minor=${1#v0.} patch
  patch=${minor#*.}
  minor=${minor%%.*}
  printf '%s.%s.%s\n' "${minor:0:1}" "$((10#${minor:1}))" "$patch"
}

TAGS=remove_all_sd
ldflags() { printf -- '-s -w -X github.com/prometheus/common/version.Version=%s' "$(release "$(prometheus_version)")"; }

cache_dir() {
  command -v go >/dev/null || die "Go is required to build Prometheus (https://go.dev/doc/install)"
  local version
  version=$(prometheus_version)
  [ -n "$version" ] || die "cannot read the github.com/prometheus/prometheus version from $MODULE/go.mod"
  go_cache_dir "$CACHE" "$MODULE" "$version" "-tags $TAGS -ldflags $(ldflags)"
}

build_prometheus() ( # into
  cd "$MODULE"
  go_build_into "$1" "$LOGS/build-prometheus" "$(ldflags)" "$TAGS" \
    github.com/prometheus/prometheus/cmd/prometheus \
    github.com/prometheus/prometheus/cmd/promtool
)

# Prints the directory holding the binaries, building them first if needed; says where the cached
# ones are unless told to be quiet.
build() { # loud|quiet
  local out release
  out=$(cache_dir)
  release=$(release "$(prometheus_version)")
  if [ -d "$out" ]; then
    [ "$1" = quiet ] || step "Prometheus $release and promtool: cached build in $out"
  else
    step "building Prometheus $release and promtool from their Go module (hack/prometheus; first time only, $COLD_BUILD_ESTIMATE; cached afterwards)"
    cached_build "$out" "Prometheus and promtool" build_prometheus || die "building Prometheus failed"
  fi
  printf '%s\n' "$out"
}

case ${1:-} in
  build) build loud >/dev/null ;;
  path) build quiet ;;
  cache-dir) cache_dir ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2 ;;
esac
