#!/usr/bin/env bash
# Makes a development CA and the certificates for TLS on the billing hop (gateway -> billing):
#   billing.pem / billing.key   billing's server certificate (DNS billing, billing-headless,
#                               localhost, IP 127.0.0.1: the names the gateway calls it by)
#   gateway.pem / gateway.key   the gateway's client certificate (mutual TLS)
#   ca.pem                      the CA both sides trust (ca.key signs; keep it out of images)
# Usage: make-dev-certs.sh OUT_DIR [OWNER_UID]
# With OWNER_UID (e.g. 10001, the containers' user) the keys are given to that user, mode 0400.
# For production, use certificates from your own CA or a cert-manager Issuer instead.
set -euo pipefail
out=${1:?usage: make-dev-certs.sh OUT_DIR [OWNER_UID]}
owner=${2:-}
mkdir -p "$out"
cd "$out"
umask 077
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 365 \
  -subj '/CN=qt-sample development CA' 2>/dev/null
leaf() { # name, CN, extensions
  openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf '%b' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
    -out "$1.pem" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
leaf billing billing 'subjectAltName=DNS:billing,DNS:billing-headless,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
leaf gateway gateway 'extendedKeyUsage=clientAuth\n'
rm -f ca.srl
chmod 0444 ca.pem billing.pem gateway.pem
chmod 0400 billing.key gateway.key ca.key
if [ -n "$owner" ]; then chown "$owner" billing.key gateway.key; fi
echo "certificates in $out: ca.pem billing.pem billing.key gateway.pem gateway.key"
