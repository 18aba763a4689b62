#!/usr/bin/env bash
# `make demo`: the main job end to end on the local control plane. Starts it, publishes a product
# as the API owner, requests a key as the consumer, and shows what the apiserver holds.
# Stops everything at the end unless KEEP=1.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${DEVPORTAL_LOCAL_DIR:-$ROOT/target/local}
export DEVPORTAL_LOCAL_DIR=$DIR
KUBECTL=$DIR/bin/kubectl
as() { local user=$1; shift; "$KUBECTL" --kubeconfig "$DIR/kubeconfigs/$user" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "${KEEP:-0}" != 1 ]; then
  trap '"$ROOT/hack/local-cluster.sh" down' EXIT
fi

step "Starting the local control plane (etcd, kube-apiserver, kube-controller-manager)"
"$ROOT/hack/local-cluster.sh" up

step "Platform engineer: namespaces and persona bindings"
for ns in toystore consumer-team; do
  as admin create namespace "$ns" --dry-run=client -o yaml | as admin apply -f - >/dev/null
done
as admin create rolebinding owner --clusterrole devportal-api-owner --user owner -n toystore \
  --dry-run=client -o yaml | as admin apply -f - >/dev/null
as admin create rolebinding consumer --clusterrole devportal-api-consumer --user consumer -n consumer-team \
  --dry-run=client -o yaml | as admin apply -f - >/dev/null
echo "owner may manage products in 'toystore'; consumer may request keys in 'consumer-team'"

step "Platform engineer: an exposed HTTPRoute with PlanPolicy and AuthPolicy; API owner: the APIProduct"
as admin apply -f "$ROOT/examples/platform.yaml"
as owner apply -f "$ROOT/examples/apiproduct.yaml"

step "Consumer: browse products in every namespace"
as consumer get apiproducts -A

step "Consumer: request a key"
as consumer apply -f "$ROOT/examples/apikey.yaml"
as consumer get apikeys -n consumer-team

step "Consumer: the key request as stored"
as consumer get apikey my-toystore-key -n consumer-team -o yaml

if [ "${KEEP:-0}" = 1 ]; then
  step "Left running (KEEP=1)"
  "$ROOT/hack/local-cluster.sh" env
  echo "# stop with: make down"
fi
