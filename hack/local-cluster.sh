#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1, built from Go modules (hack/controlplane):
# etcd, kube-apiserver (RBAC, static-token users) and kube-controller-manager (garbage collector,
# namespace controller). No container runtime, no nodes, no downloads beyond the Go module proxy.
#
# Usage: hack/local-cluster.sh <command>
#   build   build (or reuse cached) binaries into $DIR/bin
#   cache-dir  print the cache directory of the binaries `build` builds (it may not exist yet)
#   up      start in the background unless already running; install CRDs and persona RBAC
#   down    stop everything `up` started; free every port; remove the etcd data
#   run     `up`, print READY, stay until stdin closes (or a signal), then `down` (test fixtures)
#   status  say whether it is running and where
#   env     print shell exports (KUBECONFIG for admin, the state dir, PATH with kubectl and the
#           kubectl-devportal plugin that `cargo build` put in target/debug)
#   sweep   stop every control plane the test fixtures started under $DIR/tests and check that
#           none of their processes is left
#   kill NAME [SIGNAL]  stop one component (etcd, kube-apiserver, ...) at once (fault tests)
#   start NAME          start a stopped component again with its original arguments
#
# Environment:
#   DEVPORTAL_LOCAL_DIR  state directory (default: <repo>/target/local)
#   DEVPORTAL_CP_CACHE   binary cache shared by every clone (default: ~/.cache/devportal/controlplane)
#   DEVPORTAL_AUDIT_LOG  when set, the apiserver writes an audit log of every write the controller
#                        identity makes to this file (benchmarks count API writes with it; never
#                        rotated: the default 100 MB rotation would cut a 10,000-key count short)
#   DEVPORTAL_APISERVER_PROFILING  `true` serves kube-apiserver's /debug/pprof (profiling where
#                        its CPU goes in a benchmark: docs/benchmarks.md); off by default
#   DEVPORTAL_BIN        path to a built `devportal` binary: `up` and `run` then also start
#                        `devportal run` (webhook and controller) on a free 127.0.0.1 port as the
#                        controller identity, wait until it is ready and register webhooks/ with it
#                        (restarted on every `up`)
#   DEVPORTAL_ROLE       the subcommand DEVPORTAL_BIN runs: `run` (default) or `webhook` (webhook
#                        only, for benchmarks that run the controller as a process of their own)
#
# The API server presents a client certificate (pki/webhook-client.crt, from the CA
# pki/webhook-client-ca.crt) to every admission webhook, and devportal runs with --client-ca, so
# only the API server may call its webhook port.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${DEVPORTAL_LOCAL_DIR:-$ROOT/target/local}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
MODULE=$ROOT/hack/controlplane
CACHE=${DEVPORTAL_CP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devportal/controlplane}
BIN=$DIR/bin
PKI=$DIR/pki
RUN=$DIR/run
LOGS=$DIR/logs
KUBECONFIGS=$DIR/kubeconfigs
USERS=(admin owner consumer consumer2 controller)
# The controller's static-token identity is named like its in-cluster ServiceAccount, so the
# ClusterRoleBinding in manifests/ applies to it unchanged.
CONTROLLER_USER=system:serviceaccount:devportal-system:devportal

# shellcheck source=hack/lib.sh
. "$ROOT/hack/lib.sh"
log() { step "$*"; }
die() { step "error: $*"; exit 1; }
# What is being started, for people watching `make up`/`make demo`; the test fixtures (`run`) only
# say when the control plane is ready.
QUIET=
detail() { [ -n "$QUIET" ] || step "$*"; }

k8s_version() { module_version "$MODULE" k8s.io/kubernetes; }

# Measured on a 2-core machine with an empty Go module and build cache.
COLD_BUILD_ESTIMATE="~6 min on 2 cores"

# etcd (named `server` by go build after its module path), kube-apiserver, kube-controller-manager
# and kubectl into the given directory.
build_control_plane() ( # into
  cd "$MODULE"
  local version minor
  version=$(k8s_version)
  minor=${version#v1.}
  minor=${minor%%.*}
  go_build_into "$1" "$LOGS/build-controlplane" \
    "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
    "" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl &&
    mv "$1/server" "$1/etcd"
)

cmd_cache_dir() {
  command -v go >/dev/null || die "Go is required to build the control plane (https://go.dev/doc/install)"
  local version
  version=$(k8s_version)
  [ -n "$version" ] || die "cannot read the k8s.io/kubernetes version from $MODULE/go.mod"
  go_cache_dir "$CACHE" "$MODULE" "$version"
}

cmd_build() {
  local version out
  out=$(cmd_cache_dir)
  version=$(k8s_version)
  if [ -d "$out" ]; then
    detail "control plane $version: cached build in $out"
  else
    step "building the control plane from its Go modules (hack/controlplane): etcd, kube-apiserver, kube-controller-manager and kubectl $version (first time only, $COLD_BUILD_ESTIMATE; cached afterwards)"
    cached_build "$out" "the control plane" build_control_plane || die "building the control plane failed"
  fi
  mkdir -p "$BIN"
  for b in etcd kube-apiserver kube-controller-manager kubectl; do
    ln -sfn "$out/$b" "$BIN/$b"
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

api_ready() {
  [ -f "$RUN/state.env" ] || return 1
  # shellcheck disable=SC1091
  . "$RUN/state.env"
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(token admin)" \
    "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1
}

token() { awk -F, -v u="$1" '$2 == u || (u == "controller" && $2 == "'"$CONTROLLER_USER"'") { print $1 }' "$PKI/tokens.csv"; }

start_proc() { # name, command...
  local name=$1; shift
  # The command is kept so `start NAME` can bring a stopped component back exactly as it was.
  printf '%q ' "$@" >"$RUN/$name.cmd"
  nohup setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() { # what, seconds, process name, test command...
  local what=$1 secs=$2 proc=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" 2>/dev/null; do
    if ! alive "$proc"; then
      tail -n 30 "$LOGS/$proc.log" >&2 || true
      die "$proc exited while waiting for $what (log: $LOGS/$proc.log)"
    fi
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$LOGS/$proc.log" >&2; die "timed out waiting for $what"; }
    sleep 0.2
  done
}

make_pki() {
  rm -rf "$PKI"; mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=devportal-local-ca" -out ca.crt 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key 2>/dev/null
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # The webhook's callers: a CA of their own, and a client certificate the API server presents to
    # every admission webhook (admission.yaml); devportal runs with --client-ca webhook-client-ca.crt.
    openssl ecparam -name prime256v1 -genkey -noout -out webhook-client-ca.key 2>/dev/null
    openssl req -x509 -new -key webhook-client-ca.key -sha256 -days 3650 \
      -subj "/CN=devportal-local-webhook-client-ca" -out webhook-client-ca.crt 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out webhook-client.key 2>/dev/null
    openssl req -new -key webhook-client.key -subj "/CN=kube-apiserver-webhook-client" -out webhook-client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\nbasicConstraints=CA:FALSE\n' >webhook-client.ext
    openssl x509 -req -in webhook-client.csr -CA webhook-client-ca.crt -CAkey webhook-client-ca.key \
      -CAcreateserial -days 365 -sha256 -extfile webhook-client.ext -out webhook-client.crt 2>/dev/null
    rm -f webhook-client.csr webhook-client.ext webhook-client-ca.srl
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rand() { openssl rand -hex 24; }
    {
      echo "$(rand),admin,admin,\"system:masters\""
      echo "$(rand),owner,owner,\"api-owners\""
      echo "$(rand),consumer,consumer,\"api-consumers\""
      echo "$(rand),consumer2,consumer2,\"api-consumers\""
      echo "$(rand),$CONTROLLER_USER,devportal-controller,\"system:serviceaccounts,system:serviceaccounts:devportal-system\""
    } >tokens.csv
    chmod 600 ./*.key tokens.csv
  )
}

# kube-apiserver's AdmissionConfiguration: present the webhook client certificate to every
# admission webhook (user `*` matches any webhook host).
write_admission_config() {
  cat >"$PKI/webhook-client.kubeconfig" <<KC
apiVersion: v1
kind: Config
users:
- name: "*"
  user:
    client-certificate: $PKI/webhook-client.crt
    client-key: $PKI/webhook-client.key
KC
  cat >"$PKI/admission.yaml" <<ADMISSION
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $PKI/webhook-client.kubeconfig
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $PKI/webhook-client.kubeconfig
ADMISSION
  chmod 600 "$PKI/webhook-client.kubeconfig"
}

write_kubeconfigs() {
  mkdir -p "$KUBECONFIGS"
  local ca user
  ca=$(base64 -w0 <"$PKI/ca.crt")
  for user in "${USERS[@]}"; do
    cat >"$KUBECONFIGS/$user" <<KC
apiVersion: v1
kind: Config
clusters:
- name: devportal-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $(token "$user")
contexts:
- name: $user@devportal-local
  context: {cluster: devportal-local, user: $user}
current-context: $user@devportal-local
KC
    chmod 600 "$KUBECONFIGS/$user"
  done
}

install_resources() {
  detail "installing the CRDs, namespaces and persona RBAC"
  local kubectl=("$BIN/kubectl" --kubeconfig "$KUBECONFIGS/admin")
  "${kubectl[@]}" apply --server-side --force-conflicts -f "$ROOT/hack/crds/" >/dev/null
  "${kubectl[@]}" apply --server-side --force-conflicts -k "$ROOT/crds/" >/dev/null
  "${kubectl[@]}" wait --for condition=Established --timeout=60s crd --all >/dev/null
  "${kubectl[@]}" apply --server-side --force-conflicts -f "$ROOT/hack/local/namespaces/" >/dev/null
  "${kubectl[@]}" apply --server-side --force-conflicts -k "$ROOT/manifests/rbac" >/dev/null
  "${kubectl[@]}" apply --server-side --force-conflicts -f "$ROOT/hack/local/rbac-bindings.yaml" >/dev/null
}

# devportal itself (webhook and controller), as the controller identity, with a dev certificate.
start_devportal() {
  [ -n "${DEVPORTAL_BIN:-}" ] || return 0
  [ -x "$DEVPORTAL_BIN" ] || die "DEVPORTAL_BIN=$DEVPORTAL_BIN is not an executable"
  stop_proc devportal
  [ -f "$PKI/webhook/tls.crt" ] || "$ROOT/certs/gen.sh" "$PKI/webhook" >/dev/null
  local port admin client_ca=()
  # A control plane started before the webhook client certificate existed has none to present.
  [ -f "$PKI/webhook-client-ca.crt" ] && [ -f "$PKI/admission.yaml" ] && client_ca=(--client-ca "$PKI/webhook-client-ca.crt")
  port=$(free_port)
  admin=$(free_port)
  detail "starting devportal ${DEVPORTAL_ROLE:-run} (log: $LOGS/devportal.log)"
  sed -i '/^WEBHOOK_PORT=/d; /^ADMIN_PORT=/d' "$RUN/state.env"
  printf 'WEBHOOK_PORT=%s\nADMIN_PORT=%s\n' "$port" "$admin" >>"$RUN/state.env"
  start_proc devportal env KUBECONFIG="$KUBECONFIGS/controller" DEVPORTAL_LOG="${DEVPORTAL_LOG:-info}" \
    "$DEVPORTAL_BIN" "${DEVPORTAL_ROLE:-run}" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
    --tls-cert-file "$PKI/webhook/tls.crt" --tls-key-file "$PKI/webhook/tls.key" "${client_ca[@]}"
  wait_for "devportal /readyz" 60 devportal \
    curl -fsS --max-time 1 "http://127.0.0.1:$admin/readyz" -o /dev/null
  register_webhooks "https://127.0.0.1:$port"
  log "devportal ${DEVPORTAL_ROLE:-run} ready: webhook https://127.0.0.1:$port, metrics http://127.0.0.1:$admin/metrics (log: $LOGS/devportal.log)"
}

register_webhooks() { # base URL
  local ca file
  ca=$(base64 -w0 <"$PKI/webhook/ca.crt")
  for file in "$ROOT"/webhooks/*.yaml; do
    sed -e "s|\${WEBHOOK_URL}|$1|g" -e "s|\${CA_BUNDLE}|$ca|g" "$file"
    echo "---"
  done | "$BIN/kubectl" --kubeconfig "$KUBECONFIGS/admin" apply --server-side --force-conflicts -f - >/dev/null
}

cmd_up() {
  # Everything started here may hold many connections (the webhook under an idle-connection flood
  # in tests/it/webhook_transport.rs): the soft file-descriptor limit up to the hard one.
  ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
  if api_ready; then
    log "already running on https://127.0.0.1:$API_PORT ($DIR)"
    install_resources
    start_devportal
    return 0
  fi
  cmd_down quiet
  cmd_build
  command -v openssl >/dev/null || die "openssl is required"
  command -v curl >/dev/null || die "curl is required"
  local start=$SECONDS
  mkdir -p "$RUN" "$LOGS"
  detail "making the local certificate authority, serving certificate and user tokens"
  make_pki
  write_admission_config
  ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port); API_PORT=$(free_port)
  printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPI_PORT=%s\n' "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" >"$RUN/state.env"

  detail "starting etcd (log: $LOGS/etcd.log)"
  start_proc etcd "$BIN/etcd" --name local --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "" --unsafe-no-fsync --watch-progress-notify-interval 5s \
    --quota-backend-bytes 4294967296 --log-level warn
  wait_for "etcd" 30 etcd curl -fsS --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" -o /dev/null

  local audit=()
  if [ -n "${DEVPORTAL_AUDIT_LOG:-}" ]; then
    cat >"$PKI/audit-policy.yaml" <<AUDIT
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["$CONTROLLER_USER"]
  verbs: [create, update, patch, delete, deletecollection]
- level: None
AUDIT
    audit=(--audit-policy-file "$PKI/audit-policy.yaml" --audit-log-path "$DEVPORTAL_AUDIT_LOG" --audit-log-format json --audit-log-mode blocking --audit-log-maxsize 1000000)
  fi
  detail "starting kube-apiserver on https://127.0.0.1:$API_PORT (log: $LOGS/kube-apiserver.log)"
  start_proc kube-apiserver "$BIN/kube-apiserver" "${audit[@]}" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 --disable-admission-plugins ServiceAccount \
    --admission-control-config-file "$PKI/admission.yaml" \
    --endpoint-reconciler-type none --profiling="${DEVPORTAL_APISERVER_PROFILING:-false}" --v 1
  wait_for "kube-apiserver /readyz" 90 kube-apiserver api_ready
  write_kubeconfigs

  detail "starting kube-controller-manager (log: $LOGS/kube-controller-manager.log)"
  start_proc kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIGS/admin" --controllers garbagecollector,namespace \
    --leader-elect=false --secure-port 0 --use-service-account-credentials=false --v 1
  sleep 0.5
  alive kube-controller-manager || { tail -n 30 "$LOGS/kube-controller-manager.log" >&2; die "kube-controller-manager exited"; }

  install_resources
  start_devportal
  log "control plane ready in $((SECONDS - start))s: https://127.0.0.1:$API_PORT, kubeconfigs in $KUBECONFIGS/ (${USERS[*]})"
}

stop_proc() { # name
  local pid
  [ -f "$RUN/$1.pid" ] || return 0
  pid=$(cat "$RUN/$1.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  rm -f "$RUN/$1.pid"
}

cmd_down() {
  local quiet=${1:-}
  # Stop in reverse start order; anything else that registered a pid file here (devportal) first.
  local extra
  for extra in "$RUN"/*.pid; do
    [ -e "$extra" ] || continue
    case $(basename "$extra" .pid) in etcd|kube-apiserver|kube-controller-manager) ;; *) stop_proc "$(basename "$extra" .pid)";; esac
  done
  stop_proc kube-controller-manager
  stop_proc kube-apiserver
  stop_proc etcd
  rm -rf "$DIR/etcd" "$RUN" "$KUBECONFIGS"
  [ -n "$quiet" ] || log "stopped; nothing left running from $DIR"
}

cmd_run() {
  QUIET=1
  trap 'cmd_down' EXIT
  trap 'exit 0' TERM INT HUP
  cmd_up
  echo "READY $KUBECONFIGS"
  # Stay until whoever started us closes our stdin (a test binary exiting, for example).
  cat >/dev/null || true
}

cmd_status() {
  if api_ready; then
    echo "running: https://127.0.0.1:$API_PORT (state in $DIR)"
    if [ -n "${WEBHOOK_PORT:-}" ] && alive devportal; then
      echo "devportal webhook: https://127.0.0.1:$WEBHOOK_PORT, metrics: http://127.0.0.1:${ADMIN_PORT:-?}/metrics (log: $LOGS/devportal.log)"
    fi
  else
    echo "not running ($DIR)"; return 1
  fi
}

cmd_env() {
  echo "export KUBECONFIG=$KUBECONFIGS/admin"
  echo "export DEVPORTAL_LOCAL_DIR=$DIR"
  # The control plane's kubectl and the plugin cargo builds (kubectl devportal, its completion helper).
  echo "export PATH=${CARGO_TARGET_DIR:-$ROOT/target}/debug:$BIN:\$PATH"
}

cmd_kill() { # component [signal]: stop one component at once, as a crash would (fault tests)
  local name=${1:?component} signal=${2:-KILL} pid
  [ -f "$RUN/$name.pid" ] || die "$name is not running under $DIR"
  pid=$(cat "$RUN/$name.pid")
  kill -"$signal" "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$RUN/$name.pid"
  log "$name stopped with SIG$signal"
}

cmd_start() { # component: start a stopped component again with its original arguments
  local name=${1:?component}
  [ -f "$RUN/$name.cmd" ] || die "no recorded command for $name under $DIR"
  alive "$name" && die "$name is already running"
  # shellcheck disable=SC1091
  . "$RUN/state.env"
  eval "set -- $(cat "$RUN/$name.cmd")"
  start_proc "$name" "$@"
  case $name in
    etcd) wait_for "etcd" 30 etcd curl -fsS --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" -o /dev/null ;;
    kube-apiserver) wait_for "kube-apiserver /readyz" 90 kube-apiserver api_ready ;;
  esac
  log "$name started again"
}

cmd_sweep() {
  local d left
  for d in "$DIR"/tests/*/; do
    [ -d "$d" ] || continue
    DEVPORTAL_LOCAL_DIR=$d "$0" down >/dev/null 2>&1 || true
  done
  left=$(pgrep -af "$DIR/tests/" || true)
  if [ -n "$left" ]; then
    # Only a test process killed with SIGKILL (or a supervisor killed by hand) can orphan these.
    log "warning: stopping processes an earlier, aborted run left behind:
$left"
    pkill -TERM -f "$DIR/tests/" || true
    sleep 2
    pkill -KILL -f "$DIR/tests/" || true
    sleep 0.5
    ! pgrep -f "$DIR/tests/" >/dev/null || die "could not stop processes under $DIR/tests"
  fi
  rm -rf "$DIR/tests"
}

case ${1:-} in
  build) cmd_build ;;
  cache-dir) cmd_cache_dir ;;
  up) trap 'rc=$?; [ $rc -eq 0 ] || { log "up failed; stopping what started"; cmd_down quiet; }' EXIT; cmd_up ;;
  down) cmd_down ;;
  run) cmd_run ;;
  status) cmd_status ;;
  env) cmd_env ;;
  sweep) cmd_sweep ;;
  kill) shift; cmd_kill "$@" ;;
  start) shift; cmd_start "$@" ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 2 ;;
esac
