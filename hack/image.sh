#!/usr/bin/env bash
# The devportal container image, built without a container engine: a statically linked release
# binary on an empty base, packed by hack/image (a small Go program on go-containerregistry, pinned
# by hack/image/go.sum and built once into a cache). The Containerfile builds the same files and
# config for people with a container engine. The same commit gives the same image digest, given the
# same Rust toolchain and C library.
#
# Usage: hack/image.sh <command>
#   build      build the image into $DEVPORTAL_IMAGE_DIR: oci/ (an OCI image layout, for `crane push`
#              or `skopeo copy oci:...`) and devportal.tar (for `docker load`, `podman load`,
#              `kind load image-archive`); print the manifest digest on stdout
#   push REF   push the built image to REF (e.g. registry.example.com/platform/devportal:0.1.0) with
#              the pinned crane, using the logins in ~/.docker/config.json; print REPOSITORY@digest
#   ref        print the image reference: the name and tag in manifests/kustomization.yaml
#
# Environment:
#   SOURCE_DATE_EPOCH      every timestamp in the image (default: the commit time of HEAD)
#   DEVPORTAL_IMAGE_DIR    where the image is written (default: <repo>/target/image)
#   DEVPORTAL_TOOLS_CACHE  where the packer and crane are built (default: ~/.cache/devportal/image-tools)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE=$ROOT/hack/image
OUT=${DEVPORTAL_IMAGE_DIR:-$ROOT/target/image}
CACHE=${DEVPORTAL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devportal/image-tools}
SOURCE_URL=https://github.com/kuadrant/devportal

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The one place the image's name and tag are set: the `images:` entry of manifests/kustomization.yaml.
image_ref() {
  local ref
  ref=$(awk '
    /^images:/ { inside = 1; next }
    inside && /^[^ -]/ { inside = 0 }
    inside { sub(/^- /, "  ") }
    inside && $1 == "name:" { name = $2 }
    inside && $1 == "newName:" { newname = $2 }
    inside && $1 == "newTag:" { tag = $2 }
    END { if (newname != "") name = newname; if (name != "" && tag != "") print name ":" tag }
  ' "$ROOT/manifests/kustomization.yaml")
  [ -n "$ref" ] || die "manifests/kustomization.yaml has no images: entry with a name and a newTag"
  echo "$ref"
}

cargo_field() { awk -F'"' -v key="$1" '$1 == key " = " { print $2; exit }' "$ROOT/Cargo.toml"; }

# Builds (or reuses) hack/image's packer, or crane, into the cache; prints its path.
tool() { # image | crane
  command -v go >/dev/null || die "Go is required to build the image tools (https://go.dev/doc/install)"
  local key dir
  key=$(cat "$MODULE/go.mod" "$MODULE/go.sum" "$MODULE"/*.go "$MODULE/nsswitch.conf" <(go env GOVERSION GOOS GOARCH) | sha256sum | cut -c1-16)
  dir=$CACHE/$key
  if [ ! -x "$dir/$1" ]; then
    local package=. tmp
    [ "$1" = crane ] && package=github.com/google/go-containerregistry/cmd/crane
    mkdir -p "$dir"
    tmp=$(mktemp "$dir/.$1.XXXXXX")
    log "building $1 into $dir"
    (cd "$MODULE" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$tmp" "$package") \
      || { rm -f "$tmp"; die "go build of $1 failed"; }
    mv "$tmp" "$dir/$1"
  fi
  echo "$dir/$1"
}

cmd_build() {
  local ref version licenses triple arch epoch revision binary packer start digest
  ref=$(image_ref)
  version=$(cargo_field version)
  licenses=$(cargo_field license)
  [ "${ref##*:}" = "$version" ] \
    || die "manifests/kustomization.yaml tags the image ${ref##*:} but Cargo.toml's version is $version: change both together"
  triple=$(rustc -vV | awk '$1 == "host:" { print $2 }')
  case $triple in
    x86_64-*-linux-gnu) arch=amd64 ;;
    aarch64-*-linux-gnu) arch=arm64 ;;
    *) die "the image is built from a linux-gnu host toolchain (x86_64 or aarch64); this one is $triple" ;;
  esac
  epoch=${SOURCE_DATE_EPOCH:-}
  if [ -z "$epoch" ]; then
    epoch=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null) \
      || die "not a git checkout: set SOURCE_DATE_EPOCH (seconds since the epoch) for the image's timestamps"
  fi
  revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)
  if [ -n "$revision" ] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
    revision=$revision-dirty
  fi
  packer=$(tool image)

  # Static glibc (the musl target is not installable here), symbols stripped, and every build path
  # rewritten so that neither the checkout's nor the Cargo home's location ends up in the binary.
  # RUSTFLAGS with an explicit --target apply to devportal's crates only, not to build scripts and
  # proc macros, which must stay dynamic; the output goes to target/<triple>/release.
  # ring's and psm's build scripts ask to rerun when SOURCE_DATE_EPOCH or one of the variables cargo
  # sets for a crate changes, which rebuilds everything above them: cargo sees none of these, so
  # `make image` and its check tests/it/image.rs (which runs hack/image.sh build again) share one
  # build. The binary does not depend on SOURCE_DATE_EPOCH (no C code in the tree uses __DATE__ or
  # __TIME__).
  # devportal's own build.rs reruns when DEVPORTAL_REVISION changes, set or not, and cargo exports
  # what build.rs printed (`cargo:rustc-env=DEVPORTAL_REVISION=...`) into the environment of the
  # tests it runs: the check found it set where `make image` had not, and rebuilt the whole fat-LTO
  # binary (7 minutes) for the same revision. So cargo always gets it set here, to what build.rs
  # would record (the short commit, or `unknown` outside git); a value from the environment wins,
  # as it does in build.rs.
  local build_revision=${DEVPORTAL_REVISION:-}
  if [ -z "$build_revision" ]; then
    build_revision=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null) || build_revision=unknown
  fi
  start=$SECONDS
  log "building the static release binary for $triple (a cold build takes minutes)"
  (
    for var in $(compgen -e); do
      case $var in
        SOURCE_DATE_EPOCH|OUT_DIR|CARGO_PKG_*|CARGO_MANIFEST_*|CARGO_CRATE_NAME|CARGO_BIN_*|CARGO_PRIMARY_PACKAGE|CARGO_TARGET_TMPDIR|CARGO_CFG_*|CARGO_RUSTC_CURRENT_DIR) unset "$var" ;;
      esac
    done
    RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$ROOT=/devportal --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
      CARGO_PROFILE_RELEASE_STRIP=symbols DEVPORTAL_REVISION=$build_revision \
      cargo build --manifest-path "$ROOT/Cargo.toml" --release --locked --target "$triple" --bin devportal
  )
  binary=${CARGO_TARGET_DIR:-$ROOT/target}/$triple/release/devportal
  log "binary built in $((SECONDS - start))s: $(stat -c %s "$binary") bytes"

  start=$SECONDS
  digest=$("$packer" -binary "$binary" -ref "$ref" -version "$version" -revision "$revision" \
    -source "$SOURCE_URL" -licenses "$licenses" -arch "$arch" -created "$epoch" -out "$OUT")
  log "$ref $digest packed in $((SECONDS - start))s: $OUT/oci (OCI layout), $OUT/devportal.tar ($(stat -c %s "$OUT/devportal.tar") bytes, for docker/podman load)"
  echo "$digest"
}

cmd_push() {
  local target=${1:-}
  [ -n "$target" ] || die "usage: hack/image.sh push REGISTRY/REPOSITORY:TAG"
  [ -f "$OUT/oci/index.json" ] || die "no image in $OUT/oci: run \`make image\` first"
  local crane
  crane=$(tool crane)
  # crane prints REPOSITORY@sha256:... of what it pushed.
  "$crane" push "$OUT/oci" "$target"
}

# The `exit` after `esac` is parsed with the case: bash reads a script as it runs it, and a checkout
# that changes this file during a build must not make it run whatever then follows.
case ${1:-} in
  build) cmd_build ;;
  push) shift; cmd_push "$@" ;;
  ref) image_ref ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2 ;;
esac; exit
