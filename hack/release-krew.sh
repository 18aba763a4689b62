#!/usr/bin/env bash
# Builds the krew release of kubectl-devportal and fills in plugins/devportal.yaml.
#
# Usage: RELEASE_BASE_URL=https://github.com/ORG/devportal/releases/download/v0.1.0 \
#          hack/release-krew.sh [build|manifest]
#   build     (default) for each platform of the manifest: a release build of kubectl-devportal
#             and kubectl_complete-devportal (`cargo build --release --target <triple>`; the
#             targets and their linkers must be installed, e.g. `rustup target add`), packed with
#             LICENSE into dist/kubectl-devportal-v<version>-<os>-<arch>.tar.gz; then `manifest`
#   manifest  writes dist/devportal.yaml: plugins/devportal.yaml with RELEASE_BASE_URL replaced
#             and each SHA256_<OS>_<ARCH> replaced by the SHA-256 of that archive in dist/
#             (fails if one is missing)
#
# Environment: RELEASE_BASE_URL (required), DIST (default <repo>/dist), PLATFORMS (default
# "linux-amd64 linux-arm64 darwin-amd64 darwin-arm64"). The binaries carry the git commit and
# the build date (`kubectl devportal version`) (the commit from build.rs, or DEVPORTAL_REVISION; the date from DEVPORTAL_BUILD_DATE).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST=${DIST:-$ROOT/dist}
PLATFORMS=${PLATFORMS:-linux-amd64 linux-arm64 darwin-amd64 darwin-arm64}
BASE=${RELEASE_BASE_URL:?set RELEASE_BASE_URL to the release download URL}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)

triple() {
  case $1 in
    linux-amd64) echo x86_64-unknown-linux-gnu ;;
    linux-arm64) echo aarch64-unknown-linux-gnu ;;
    darwin-amd64) echo x86_64-apple-darwin ;;
    darwin-arm64) echo aarch64-apple-darwin ;;
    *) echo "unknown platform $1" >&2; exit 2 ;;
  esac
}

archive() { echo "$DIST/kubectl-devportal-v$VERSION-$1.tar.gz"; }

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

build() {
  mkdir -p "$DIST"
  export DEVPORTAL_BUILD_DATE=${DEVPORTAL_BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
  for platform in $PLATFORMS; do
    local target stage
    target=$(triple "$platform")
    cargo build --manifest-path "$ROOT/Cargo.toml" --release --locked --target "$target" \
      --bin kubectl-devportal --bin kubectl_complete-devportal
    stage=$(mktemp -d)
    cp "$ROOT/target/$target/release/kubectl-devportal" \
       "$ROOT/target/$target/release/kubectl_complete-devportal" "$ROOT/LICENSE" "$stage/"
    tar -C "$stage" -czf "$(archive "$platform")" \
      kubectl-devportal kubectl_complete-devportal LICENSE
    rm -rf "$stage"
    echo "built $(archive "$platform")"
  done
}

manifest() {
  mkdir -p "$DIST"
  local text platform sum placeholder
  # The published manifest without the comments about its placeholders.
  text=$(grep -v "^#" "$ROOT/plugins/devportal.yaml")
  text=${text//RELEASE_BASE_URL/${BASE%/}}
  for platform in $PLATFORMS; do
    [ -f "$(archive "$platform")" ] || { echo "missing $(archive "$platform"): run build first" >&2; exit 1; }
    sum=$(sha256 "$(archive "$platform")")
    placeholder=SHA256_$(echo "${platform/-/_}" | tr '[:lower:]' '[:upper:]')
    text=${text//$placeholder/$sum}
  done
  if grep -q 'SHA256_' <<<"$text"; then
    echo "dist/devportal.yaml would keep a SHA256_ placeholder: set PLATFORMS to every platform" >&2
    exit 1
  fi
  printf '%s\n' "$text" > "$DIST/devportal.yaml"
  echo "wrote $DIST/devportal.yaml"
}

case ${1:-build} in
  build) build; manifest ;;
  manifest) manifest ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
