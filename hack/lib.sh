#!/usr/bin/env bash
# Shared by the hack/ scripts (source it): progress lines with the time elapsed since the outermost
# command started, heartbeats for long steps, and cached builds of Go binaries. Run directly,
# `hack/lib.sh step MESSAGE` prints one progress line (the Makefile uses that).

# One clock for a whole `make` run: the Makefile exports DEVPORTAL_T0, nested scripts inherit it.
: "${DEVPORTAL_T0:=$(date +%s)}"
export DEVPORTAL_T0

# How often a long step says it is still running, in seconds.
HEARTBEAT_SECONDS=${DEVPORTAL_HEARTBEAT_SECONDS:-30}

# 75 -> 1m15s
duration() {
  local s=$1
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

# A progress line on stderr: `[+1m15s] MESSAGE`.
step() { printf '[+%s] %s\n' "$(duration $(($(date +%s) - DEVPORTAL_T0)))" "$*" >&2; }

# Progress of a `go list -deps` log (modules downloaded) and of a `go build -v` log (packages
# compiled, out of GO_PACKAGES).
go_download_progress() { printf '%s modules downloaded' "$(grep -c '^go: downloading' "$1" || true)"; }
go_compile_progress() { printf '%s of %s packages compiled' "$(grep -vc '^go: ' "$1" || true)" "$GO_PACKAGES"; }

# Runs COMMAND... in a process group of its own with its output in LOG, saying every
# HEARTBEAT_SECONDS that it is still WHAT, with PROGRESS (a function given LOG) when set. Shows
# LOG's tail if it fails; stops the whole group if this script is interrupted.
with_heartbeat() { # what, log, progress function or "", command...
  local what=$1 log=$2 progress=$3
  shift 3
  local started=$SECONDS next=$((SECONDS + HEARTBEAT_SECONDS)) pid rc=0 saved_traps detail
  saved_traps=$(trap -p INT TERM HUP)
  setsid "$@" >"$log" 2>&1 </dev/null &
  pid=$!
  # shellcheck disable=SC2064 # the pid is meant to be expanded now
  trap "kill -TERM -- -$pid 2>/dev/null; exit 130" INT TERM HUP
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)) && kill -0 "$pid" 2>/dev/null; then
      detail=$(duration $((SECONDS - started)))
      [ -z "$progress" ] || detail="$detail; $("$progress" "$log")"
      step "  ... still $what ($detail)"
      next=$((SECONDS + HEARTBEAT_SECONDS))
    fi
  done
  wait "$pid" || rc=$?
  trap - INT TERM HUP
  eval "$saved_traps"
  if ((rc != 0)); then
    tail -n 40 "$log" >&2
    step "failed: $what (exit status $rc; full log: $log)"
  fi
  return "$rc"
}

# The version a Go module's go.mod requires of another module.
module_version() { awk -v m="$2" '$1 == m { print $2 }' "$1/go.mod"; } # module dir, module path

# The cache directory for binaries built from the Go module in MODULE_DIR: one per content of its
# go.mod and go.sum, per Go version and per build flags (when given), so a change to any of them
# builds afresh and nothing else does.
go_cache_dir() { # cache root, module dir, name prefix[, build flags]
  local key
  key=$(cat "$2/go.mod" "$2/go.sum" <(go env GOVERSION GOOS GOARCH) <(printf '%s' "${4:+$4$'\n'}") |
    sha256sum | cut -c1-16)
  printf '%s/%s-%s\n' "$1" "$3" "$key"
}

# Makes sure OUT holds what BUILD (a command given an empty directory to fill) builds: nothing to
# do when OUT exists; otherwise builds once into a temporary directory and moves it into place,
# waiting rather than building twice when another checkout is building the same thing.
cached_build() { # out, what (for messages), build command...
  local out=$1 what=$2
  shift 2
  [ -d "$out" ] && return 0
  mkdir -p "$(dirname "$out")"
  local lock_fd
  exec {lock_fd}>"$out.lock"
  if ! flock -n "$lock_fd"; then
    step "waiting for another build of $what into $out to finish"
    flock "$lock_fd"
  fi
  if [ ! -d "$out" ]; then
    rm -rf "$out".build.* # left by an interrupted build; none can be running without the lock
    local tmp started=$SECONDS
    tmp=$(mktemp -d "$out.build.XXXXXX")
    if ! "$@" "$tmp"; then
      rm -rf "$tmp"
      exec {lock_fd}>&-
      return 1
    fi
    mv "$tmp" "$out"
    step "built $what in $(duration $((SECONDS - started))), cached in $out"
  fi
  exec {lock_fd}>&-
}

# Builds PACKAGEs of the Go module in the current directory into INTO with LDFLAGS and build TAGS
# (comma-separated, may be empty), after downloading the modules they need; progress lines name
# each phase, the logs are LOG_PREFIX-*.log.
go_build_into() { # into, log prefix, ldflags, tags, package...
  local into=$1 log=$2 ldflags=$3 tags=$4
  shift 4
  mkdir -p "$(dirname "$log")"
  export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
  step "  downloading the Go modules they need (once per machine)"
  with_heartbeat "downloading Go modules" "$log-download.log" go_download_progress go list -deps -tags "$tags" "$@" || return 1
  GO_PACKAGES=$(grep -vc '^go: ' "$log-download.log")
  step "  compiling $GO_PACKAGES Go packages (those already in Go's build cache are skipped)"
  with_heartbeat "compiling" "$log-compile.log" go_compile_progress \
    go build -v -trimpath -ldflags "$ldflags" -tags "$tags" -o "$into/" "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case ${1:-} in
    step) shift; step "$@" ;;
    *) echo "usage: hack/lib.sh step MESSAGE" >&2; exit 2 ;;
  esac
fi
