#!/usr/bin/env bash
# A password grant authenticated with private_key_jwt (RFC 7523), using
# nothing but openssl and curl: builds the client assertion, signs it with
# the app's RSA private key (RS256), and posts it without an Authorization
# header, as Oracle's documentation does.
#
#   docs/examples/private-key-jwt.sh ISSUER CLIENT_ID PRIVATE_KEY.pem USERNAME PASSWORD [SCOPE]
#
# The app must be registered with the matching certificate or public key
# (`certificate = …` in the domain file, or `latchkey app create …
# --certificate-file cert.pem`).
set -euo pipefail
issuer=${1%/} client_id=$2 key=$3 username=$4 password=$5 scope=${6:-}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

now=$(date +%s)
header=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
# iss = sub = client_id; aud = the token endpoint; a short exp; a fresh jti
# (the server refuses any jti it has seen before).
claims=$(printf '{"iss":"%s","sub":"%s","aud":"%s/oauth2/v1/token","iat":%d,"exp":%d,"jti":"%s"}' \
  "$client_id" "$client_id" "$issuer" "$now" "$((now + 300))" "$(openssl rand -hex 16)" | b64url)
signature=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$key" -binary | b64url)

curl -sS --request POST "$issuer/oauth2/v1/token" \
  -H 'Content-Type: application/x-www-form-urlencoded;charset=UTF-8' \
  --data-urlencode 'grant_type=password' \
  --data-urlencode "username=$username" \
  --data-urlencode "password=$password" \
  ${scope:+--data-urlencode "scope=$scope"} \
  --data-urlencode 'client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer' \
  --data-urlencode "client_assertion=$header.$claims.$signature" \
  --data-urlencode "client_id=$client_id"
