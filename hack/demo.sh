#!/usr/bin/env bash
# `make demo`: the whole story on the local control plane. Starts it with devportal (webhook and
# controller), publishes an API as its owner, requests a key as a consumer, shows the webhook
# correcting a spoofed requester and refusing a self-approval (plain kubectl: what the webhook
# does to hand-written objects), then the everyday workflow through `kubectl devportal`: the
# owner's inbox and approval, the consumer's `status`, `reveal` into a pipe and `rotate`; and
# the resulting Secret (key redacted) and the metrics. Stops everything unless KEEP=1.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${DEVPORTAL_LOCAL_DIR:-$ROOT/target/local}
export DEVPORTAL_LOCAL_DIR=$DIR
# shellcheck source=hack/lib.sh
. "$ROOT/hack/lib.sh"
KUBECTL=$DIR/bin/kubectl
as() { local user=$1; shift; "$KUBECTL" --kubeconfig "$DIR/kubeconfigs/$user" "$@"; }
# `kubectl devportal ...` as a persona: kubectl finds the plugin cargo built on PATH.
devportal() {
  local user=$1; shift
  KUBECONFIG="$DIR/kubeconfigs/$user" PATH="$ROOT/target/debug:$PATH" "$KUBECTL" devportal "$@"
}
section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
started=$SECONDS

if [ "${KEEP:-0}" != 1 ]; then
  trap '"$ROOT/hack/local-cluster.sh" down' EXIT
fi

section "Build devportal and start the local control plane with it (webhook + controller)"
# The control plane's Go build (first time only) and devportal's cargo build side by side: each
# leaves the other's idle moments (a long link, a crate compiling alone) to the other.
"$ROOT/hack/local-cluster.sh" build &
controlplane_build=$!
step "building devportal and kubectl-devportal (cargo build; a first build compiles ~300 crates, cargo shows its progress)"
if ! (cd "$ROOT" && cargo build); then
  kill "$controlplane_build" 2>/dev/null || true
  exit 1
fi
wait "$controlplane_build" || { step "building the control plane failed"; exit 1; }
DEVPORTAL_BIN=$ROOT/target/debug/devportal "$ROOT/hack/local-cluster.sh" up

section "Platform engineer (admin): namespaces, persona bindings, an exposed route, plans and API-key auth"
for ns in toystore consumer-team; do
  as admin create namespace "$ns" --dry-run=client -o yaml | as admin apply -f - >/dev/null
done
as admin create rolebinding owner --clusterrole devportal-api-owner --user owner -n toystore \
  --dry-run=client -o yaml | as admin apply -f - >/dev/null
as admin create rolebinding consumer --clusterrole devportal-api-consumer --user consumer -n consumer-team \
  --dry-run=client -o yaml | as admin apply -f - >/dev/null
as admin apply -f "$ROOT/examples/platform.yaml"
# No gateway or Kuadrant runs here: stand in for them by writing the status they would write.
as admin patch httproute toystore -n toystore --subresource=status --type=merge -p \
  '{"status":{"parents":[{"parentRef":{"name":"external","namespace":"gateway-system"},"controllerName":"example.com/gateway","conditions":[{"type":"Accepted","status":"True","reason":"Accepted","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}]}}' >/dev/null
as admin patch authpolicy toystore-auth -n toystore --subresource=status --type=merge -p \
  '{"status":{"conditions":[{"type":"Accepted","status":"True","reason":"Accepted"},{"type":"Enforced","status":"True","reason":"Enforced"}]}}' >/dev/null
say "(the gateway's and Kuadrant's status is simulated: the route is Accepted, the AuthPolicy Enforced)"

section "API owner: publish the Toy Store API (manual approval)"
as owner apply -f "$ROOT/examples/apiproduct.yaml"
as owner wait apiproduct/toystore -n toystore --for=condition=PlanPolicyDiscovered --timeout=30s >/dev/null
devportal consumer products -n toystore

section "Consumer: request a key, claiming to be someone else"
sed 's/userId: consumer/userId: someone-else/' "$ROOT/examples/apikey.yaml" | as consumer apply -f - 2>&1 | sed 's/^/   /'
say "stored requester: $(devportal consumer keys my-toystore-key -n consumer-team -o jsonpath='{.items[0].spec.requestedBy.userId}')"
devportal consumer keys -n consumer-team -o wide

section "Consumer: try to approve their own key"
if out=$(as consumer patch apikey my-toystore-key -n consumer-team --type=merge \
    -p '{"spec":{"approval":{"approved":true}}}' 2>&1); then
  echo "unexpected: self-approval was allowed"; exit 1
fi
say "${out}"

section "API owner: the inbox (kubectl devportal requests), in the product's namespace (no access to APIKeys needed)"
request=
for _ in $(seq 1 100); do
  request=$(as owner get apikeyrequests -n toystore \
    -o jsonpath='{.items[?(@.spec.apiKeyRef.name=="my-toystore-key")].metadata.name}')
  [ -n "$request" ] && break
  sleep 0.3
done
[ -n "$request" ] || { echo "the APIKeyRequest did not appear"; exit 1; }
devportal owner requests -n toystore

section "API owner: approve the request with an APIKeyApproval (reviewedBy forged, then stamped)"
as owner create -f - <<EOF 2>&1 | sed 's/^/   /'
apiVersion: devportal.kuadrant.io/v1alpha1
kind: APIKeyApproval
metadata: {name: $request-approval, namespace: toystore}
spec:
  apiKeyRequestRef: {name: $request}
  approved: true
  reviewedBy: someone-else
  reason: welcome
EOF
say "stored reviewer: $(as owner get apikeyapproval "$request-approval" -n toystore -o jsonpath='{.spec.reviewedBy}')"
as consumer wait apikey/my-toystore-key -n consumer-team --for=jsonpath='{.status.phase}'=Approved --timeout=30s >/dev/null
as owner wait apikeyrequest/"$request" -n toystore --for=condition=Approved --timeout=30s >/dev/null
devportal owner requests -n toystore --all

section "Consumer: the key in full (kubectl devportal status), like cmctl status certificate"
devportal consumer status my-toystore-key -n consumer-team

section "Consumer: the key's Secret (value redacted)"
secret=$(as consumer get apikey my-toystore-key -n consumer-team -o jsonpath='{.status.secretRef.name}')
as consumer get secret "$secret" -n consumer-team -o go-template='name: {{.metadata.name}}{{"\n"}}data:{{"\n"}}{{range $k, $v := .data}}  {{$k}}: <redacted, {{len $v}} base64 chars>{{"\n"}}{{end}}'
key=$(devportal consumer reveal my-toystore-key -n consumer-team)
say "kubectl devportal reveal (into a pipe): the key starts with ${key%%_*}_ and passes its checksum: $("$ROOT/target/debug/devportal" verify-key --stdin <<<"$key")"
devportal consumer rotate my-toystore-key -n consumer-team | sed 's/^/   /'
rotated=$(devportal consumer reveal my-toystore-key -n consumer-team)
[ "$rotated" != "$key" ] || { echo "rotate left the value unchanged"; exit 1; }
say "after rotate the value differs (starts with ${rotated%%_*}_); the old one no longer works"
unset key rotated
section "Gateway side: the enforcement Secret Authorino matches, in the Kuadrant namespace (labels and annotations)"
as admin get secrets -n kuadrant-system -l devportal.kuadrant.io/role=enforcement \
  -o custom-columns='NAME:.metadata.name,PLAN:.metadata.annotations.secret\.kuadrant\.io/plan-id,USER:.metadata.annotations.secret\.kuadrant\.io/user-id,APP:.metadata.labels.app'

section "Metrics"
. "$DIR/run/state.env"
say "Prometheus metrics: http://127.0.0.1:$ADMIN_PORT/metrics  (health: /livez, /readyz)"
curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^devportal_(admission_requests_total|apikeys|leader|secrets_written_total)' | sed 's/^/   /'

section "Done in $((SECONDS - started))s"
if [ "${KEEP:-0}" = 1 ]; then
  "$ROOT/hack/local-cluster.sh" env
  echo "# left running (KEEP=1); stop with: make down"
fi
