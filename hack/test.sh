#!/usr/bin/env bash
# `make test`, after its prerequisites check: the whole suite.
#   1. The Go builds the tests need (the control plane, then Prometheus and promtool, then helm;
#      cached in ~/.cache/devportal after the first time) start in the background, while
#   2. rustfmt and clippy check the code and `cargo test --no-run` builds every test target once.
#   3. The tests run in two lanes side by side, each with its output in target/test-logs/<lane>.log:
#      exclusive  tests/serial (three control planes of its own, one test at a time on each),
#                 tests/controllers and tests/kuadrant (a control plane each);
#      shared     the unit tests, tests/it (the control plane with devportal that its tests
#                 share), then the doc tests.
# Most of an integration test's time is waiting for the cluster, and a first Go build and a first
# cargo build leave each other idle moments, so both pairs share 2 cores well. Progress lines say
# which binary finished with what; a lane that fails shows its failures and its full log's path.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
source hack/lib.sh

CARGO=${CARGO:-cargo}
LOG_DIR=target/test-logs
mkdir -p "$LOG_DIR"

# Their own progress lines ("building ...", "still building ...") go to the terminal as they come.
setsid bash -c 'hack/local-cluster.sh build && hack/prometheus.sh build && hack/helm.sh build' </dev/null &
go_builds=$!
# Stopped (the whole process group) if this script stops before they are done.
# shellcheck disable=SC2064 # the pid is meant to be expanded now
trap "kill -TERM -- -$go_builds 2>/dev/null" EXIT
trap "exit 130" INT TERM HUP

step "checking formatting and lints (cargo fmt, cargo clippy: a first run checks ~300 crates without building them, which the test build then builds)"
"$CARGO" fmt --all -- --check
"$CARGO" clippy --all-targets -- -D warnings

step "building the tests (cargo test --no-run: devportal, its unit tests and the four integration-test binaries)"
"$CARGO" test --no-run

if ! wait "$go_builds"; then
  step "the control plane's, Prometheus' or helm's Go build failed (its log is named above)"
  exit 1
fi
trap - EXIT INT TERM HUP

# Two lanes of about the same length. Integration tests mostly wait for the cluster, so each lane
# runs several at a time rather than libtest's one per core: tests/serial three (one per control
# plane of its own), the others eight (each in its own namespace). A failing binary does not stop
# the next one (--no-fail-fast): every failure shows in one run.
lane_exclusive() {
  RUST_TEST_THREADS=3 "$CARGO" test --no-fail-fast --test serial --test controllers --test kuadrant
}
lane_shared() {
  RUST_TEST_THREADS=8 "$CARGO" test --no-fail-fast --lib --bins --test it
  "$CARGO" test --doc
}

step "running the tests in two lanes side by side (output in $LOG_DIR/): exclusive (tests/serial, tests/controllers, tests/kuadrant) and shared (unit tests, tests/it, doc tests)"
declare -A pid=() started=() shown=()
lanes=(exclusive shared)
for lane in "${lanes[@]}"; do
  : >"$LOG_DIR/$lane.log"
  setsid bash -c "set -e; $(declare -f "lane_$lane"); CARGO='$CARGO'; lane_$lane" \
    >"$LOG_DIR/$lane.log" 2>&1 </dev/null &
  pid[$lane]=$!
  started[$lane]=$SECONDS
  shown[$lane]=0
done
# shellcheck disable=SC2064 # the pids are meant to be expanded now
trap "kill -TERM -- -${pid[exclusive]} -${pid[shared]} 2>/dev/null; exit 130" INT TERM HUP

# The lines of a lane's log worth a progress line: which binary starts, and its result.
report_new_lines() { # lane
  local lane=$1 log="$LOG_DIR/$1.log" total
  total=$(wc -l <"$log")
  if ((total > shown[$lane])); then
    sed -n "$((shown[$lane] + 1)),${total}p" "$log" |
      sed -nE 's#^ *Running (unittests )?([^ ]+) .*#\2#p; s#^ *Doc-tests (.*)#doc tests of \1#p; s#^test result: (.*)#  \1#p' |
      while IFS= read -r line; do step "$lane: $line"; done
    shown[$lane]=$total
  fi
}

tests_done() { grep -cE ' \.\.\. (ok|FAILED|ignored)$' "$LOG_DIR/$1.log" || true; }

next_beat=$((SECONDS + HEARTBEAT_SECONDS))
declare -A status=()
finished=0
while ((finished < ${#lanes[@]})); do
  sleep 1
  for lane in "${lanes[@]}"; do
    [ -z "${status[$lane]:-}" ] || continue
    report_new_lines "$lane"
    if ! kill -0 "${pid[$lane]}" 2>/dev/null; then
      rc=0
      wait "${pid[$lane]}" || rc=$?
      status[$lane]=$rc
      finished=$((finished + 1))
      report_new_lines "$lane"
      if ((rc == 0)); then
        step "$lane: passed in $(duration $((SECONDS - started[$lane])))"
      else
        # The failures section of each binary that failed (libtest prints it before its result).
        sed -n '/^failures:$/,/^test result:/p' "$LOG_DIR/$lane.log" >&2
        tail -n 20 "$LOG_DIR/$lane.log" >&2
        step "$lane: FAILED (exit status $rc) after $(duration $((SECONDS - started[$lane]))); full log: $LOG_DIR/$lane.log"
      fi
    fi
  done
  if ((SECONDS >= next_beat)); then
    for lane in "${lanes[@]}"; do
      [ -n "${status[$lane]:-}" ] ||
        step "  ... $lane still running ($(duration $((SECONDS - started[$lane]))); $(tests_done "$lane") tests done)"
    done
    next_beat=$((SECONDS + HEARTBEAT_SECONDS))
  fi
done
trap - INT TERM HUP

for lane in "${lanes[@]}"; do
  ((status[$lane] == 0)) || exit 1
done
