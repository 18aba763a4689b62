#!/usr/bin/env bash
# Makes a development CA and a serving certificate for devportal's webhook.
#
# Usage: certs/gen.sh <out-dir> [extra DNS name...]
#   Writes ca.crt, ca.key, tls.crt and tls.key into <out-dir>. The serving certificate is valid for
#   127.0.0.1, localhost and any extra DNS names given (for example
#   devportal.devportal-system.svc for the in-cluster Service). Existing files are replaced.
#   Put ca.crt, base64-encoded, into the webhook configurations' caBundle.
set -euo pipefail

out=${1:?usage: certs/gen.sh <out-dir> [extra DNS name...]}
shift
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 1; }
mkdir -p "$out"
cd "$out"

san="IP:127.0.0.1,DNS:localhost"
for name in "$@"; do san="$san,DNS:$name"; done

openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=devportal-webhook-dev-ca" -out ca.crt 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out tls.key.sec1 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in tls.key.sec1 -out tls.key 2>/dev/null
rm -f tls.key.sec1
openssl req -new -key tls.key -subj "/CN=devportal-webhook" -out tls.csr 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\nbasicConstraints=CA:FALSE\n' "$san" >tls.ext
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 \
  -extfile tls.ext -out tls.crt 2>/dev/null
rm -f tls.csr tls.ext ca.srl
chmod 600 ca.key tls.key
echo "wrote $(pwd)/{ca.crt,ca.key,tls.crt,tls.key} for $san"
