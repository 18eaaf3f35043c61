#!/usr/bin/env bash
# Development PKI and token signing key for the local stack, in $RECOBRO_PKI_DIR
# (default $RECOBRO_STACK_DIR/pki, i.e. .stack/pki):
#   ca.pem, ca.key              dev CA (EC P-256, 10 years)
#   server.pem, server.key      server certificate for every service (localhost, 127.0.0.1, ::1,
#                               the Kubernetes service names), serverAuth, 1 year
#   client.pem, client.key      client certificate CN=recobro-dev-client, clientAuth, 1 year
#   client2.pem, client2.key    client certificate CN=recobro-dev-client-2 (tests of bound tokens)
#   broker.pem, broker.key      the Kafka broker's certificate, CN=recobro-kafka-broker, the server
#                               names above, serverAuth and clientAuth (the broker is the client of
#                               its own controller listener, which requires a certificate)
#   signing.key                 access-token signing key (EC P-256, ES256)
#   signing.kid                 its key id: dev-<first 16 hex digits of SHA-256(public key DER)>
#   jwks.json                   its public key as a JWK Set, what the services verify tokens with
# Private keys are PKCS#8 PEM, mode 600, owned by whoever runs this script (the user that
# runs the services). Idempotent: files that exist and are valid are left alone; a certificate
# that expires within 7 days, or no longer verifies against the CA, is issued again (with the
# same key, so a running service that re-reads it never sees a key that does not match).
# A new CA (missing, or expiring within 7 days) means new certificates for everything.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export DEBIAN_FRONTEND=noninteractive

PKI="$RECOBRO_PKI_DIR"
mkdir -p "$PKI"
cd "$PKI"

say() { printf '[pki] %s\n' "$*"; }

if ! command -v openssl >/dev/null; then
  say "apt-get update"; apt-get update -qq >/dev/null
  say "apt-get install openssl"
  apt-get install -y -qq openssl >"$PKI/apt.log" 2>&1 || { tail -n 20 "$PKI/apt.log" >&2; exit 1; }
fi

RENEW_BEFORE=$((7 * 24 * 3600))   # seconds
SERVER_DNS=(localhost recobro-accounts recobro-scheduling recobro-channels
            '*.recobro.svc' '*.recobro.svc.cluster.local')
SERVER_IPS=(127.0.0.1 ::1)

tmp="$(mktemp -d "$PKI/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# Our own config, so that nothing in the system's openssl.cnf adds or clashes with extensions.
cnf="$tmp/openssl.cnf"
{
  printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n'
  printf '[ca_ext]\nbasicConstraints = critical, CA:true, pathlen:0\n'
  printf 'keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n'
  printf '[server_ext]\nbasicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\n'
  printf 'extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n'
  printf 'subjectAltName = @server_san\n'
  printf '[broker_ext]\nbasicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\n'
  printf 'extendedKeyUsage = serverAuth, clientAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n'
  printf 'subjectAltName = @server_san\n'
  printf '[client_ext]\nbasicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\n'
  printf 'extendedKeyUsage = clientAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n'
  printf '[server_san]\n'
  i=0; for d in "${SERVER_DNS[@]}"; do i=$((i + 1)); printf 'DNS.%d = %s\n' "$i" "$d"; done
  i=0; for a in "${SERVER_IPS[@]}"; do i=$((i + 1)); printf 'IP.%d = %s\n' "$i" "$a"; done
} >"$cnf"

# A new EC P-256 key, PKCS#8 PEM, mode 600, written atomically.
new_key() {
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/key" 2>/dev/null)
  mv -f "$tmp/key" "$1"
}

# True when $1 is a readable EC P-256 private key.
p256_key_ok() {
  [ -s "$1" ] && [[ "$(openssl pkey -in "$1" -noout -text 2>/dev/null)" == *'NIST CURVE: P-256'* ]]
}

# True when certificate $1 holds the public key of private key $2.
pair_ok() {
  [ -s "$1" ] && [ -s "$2" ] &&
    [ "$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]
}

not_expiring() { openssl x509 -in "$1" -noout -checkend "$RENEW_BEFORE" >/dev/null 2>&1; }

serial() { echo "0x$(openssl rand -hex 16)"; }

# ---------------------------------------------------------------- CA
NEW_CA=
if ! { pair_ok ca.pem ca.key && not_expiring ca.pem &&
       openssl verify -x509_strict -CAfile ca.pem ca.pem >/dev/null 2>&1; }; then
  say "creating the dev CA (ca.pem, 10 years)"
  new_key ca.key
  openssl req -x509 -new -config "$cnf" -extensions ca_ext -key ca.key -sha256 -days 3650 \
      -set_serial "$(serial)" -subj "/O=Recobro development/CN=Recobro Dev CA" -out "$tmp/cert"
  chmod 644 "$tmp/cert"; mv -f "$tmp/cert" ca.pem
  NEW_CA=1
fi

# ---------------------------------------------------------------- leaf certificates
# leaf NAME CN PROFILE PURPOSE: (re)issue NAME.pem unless it is valid; keep NAME.key if usable.
leaf() {
  local name=$1 cn=$2 ext=$3 purpose=$4 ok=1 h
  if [ -n "$NEW_CA" ] || ! pair_ok "$name.pem" "$name.key" || ! not_expiring "$name.pem" ||
     ! openssl verify -x509_strict -purpose "$purpose" -CAfile ca.pem "$name.pem" >/dev/null 2>&1 ||
     [ "$(openssl x509 -in "$name.pem" -noout -subject -nameopt multiline 2>/dev/null |
          sed -n 's/^ *commonName *= *//p')" != "$cn" ]; then
    ok=
  elif [ "$ext" = server_ext ] || [ "$ext" = broker_ext ]; then
    # A certificate from an older version of this script may lack a name added since.
    for h in "${SERVER_DNS[@]}"; do
      [[ "$(openssl x509 -in "$name.pem" -noout -checkhost "$h")" == *'does match'* ]] || ok=
    done
    for h in "${SERVER_IPS[@]}"; do
      [[ "$(openssl x509 -in "$name.pem" -noout -checkip "$h")" == *'does match'* ]] || ok=
    done
  fi
  [ -n "$ok" ] && return
  if p256_key_ok "$name.key" && [ -z "$NEW_CA" ]; then
    say "issuing $name.pem (CN=$cn) with the existing $name.key"
  else
    say "issuing $name.pem (CN=$cn) with a new $name.key"
    new_key "$name.key"
  fi
  openssl req -new -config "$cnf" -key "$name.key" -subj "/O=Recobro development/CN=$cn" -out "$tmp/csr"
  openssl x509 -req -in "$tmp/csr" -CA ca.pem -CAkey ca.key -set_serial "$(serial)" -sha256 -days 365 \
      -extfile "$cnf" -extensions "$ext" -out "$tmp/cert" 2>/dev/null
  chmod 644 "$tmp/cert"; mv -f "$tmp/cert" "$name.pem"
}

leaf server  recobro-services     server_ext sslserver
leaf client  recobro-dev-client   client_ext sslclient
leaf client2 recobro-dev-client-2 client_ext sslclient
leaf broker  recobro-kafka-broker broker_ext sslserver

openssl verify -x509_strict -CAfile ca.pem server.pem client.pem client2.pem broker.pem >/dev/null ||
  { say "the certificates do not verify against ca.pem"; exit 1; }

# ---------------------------------------------------------------- token signing key and JWKS
if ! p256_key_ok signing.key; then
  say "creating the token signing key (signing.key, ES256)"
  new_key signing.key
fi
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
openssl pkey -in signing.key -pubout -outform DER -out "$tmp/pub.der"
# A P-256 SubjectPublicKeyInfo is 91 bytes and ends with the point 04 || x || y.
[ "$(wc -c <"$tmp/pub.der")" -eq 91 ] || { say "signing.key: not a P-256 key"; exit 1; }
x="$(tail -c 64 "$tmp/pub.der" | head -c 32 | b64url)"
y="$(tail -c 32 "$tmp/pub.der" | b64url)"
kid="dev-$(openssl dgst -sha256 -r "$tmp/pub.der" | cut -c1-16)"
printf '{"keys":[{"kty":"EC","crv":"P-256","x":"%s","y":"%s","alg":"ES256","use":"sig","kid":"%s"}]}\n' \
  "$x" "$y" "$kid" >"$tmp/jwks.json"
printf '%s\n' "$kid" >"$tmp/signing.kid"
# Rewritten only when different, so that a service watching jwks.json sees no spurious change.
for f in jwks.json signing.kid; do
  if ! cmp -s "$tmp/$f" "$f"; then
    say "writing $f (kid $kid)"
    chmod 644 "$tmp/$f"; mv -f "$tmp/$f" "$f"
  fi
done

chmod 600 ca.key server.key client.key client2.key broker.key signing.key
chmod 755 "$PKI"
say "ready in $PKI (kid $kid)"
