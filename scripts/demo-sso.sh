#!/usr/bin/env bash
# `make demo-sso` (after `make build` and `scripts/tools.sh temporal ui-server`): the Web UI with single sign-on
# in front of an HTTPS codec server, as e2e/sso_test.go runs it. Starts
#   - an OpenID provider (internal/oidcprovider: zitadel/oidc's example
#     provider with a login page) with two users:
#       ada / ada          permissions ["default:read"]: sees plaintext
#       mallory / mallory  permissions ["billing:read"]: sees ciphertext
#   - the codec server on HTTPS (a certificate from a CA made here) checking
#     the signed-in user's access token (--oidc-issuer, CORS for the UI),
#   - the Temporal dev server (headless) and the Temporal UI server
#     (bin/ui-server) with OIDC sign-in and "pass access token" on,
#   - the example worker, then the example starter,
# and prints the UI address. Your browser must accept the codec server's
# certificate: open its /healthz once and proceed, or start Chromium with
# the --ignore-certificate-errors-spki-list flag printed at the end.
# Ctrl-C stops everything it started and exits 0.
#
# Settings (environment): DEMO_EXIT_AFTER_START=1 stops once the starter is
# done; DEMO_LOG_DIR (.data/demo-sso) holds logs, certificates and keys.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}

TEMPORAL_PORT=7233
UI_PORT=8080
CODEC_PORT=8081
OIDC_PORT=9998
DIR=${DEMO_LOG_DIR:-.data/demo-sso}
TASK_QUEUE=envelope-demo-sso
TEMPORAL_ADDR=127.0.0.1:$TEMPORAL_PORT
UI_URL=http://localhost:$UI_PORT
CODEC_URL=https://localhost:$CODEC_PORT
ISSUER=http://localhost:$OIDC_PORT
CLIENT_ID=temporal-ui

say() { printf 'demo-sso: %s\n' "$*"; }
die() { printf 'demo-sso: %s\n' "$*" >&2; exit 1; }

for b in bin/temporal bin/codec-server bin/ui-server; do
  [[ -x $b ]] || die "$b is missing; run \`make demo-sso\` (it builds and links what it needs)"
done
command -v openssl >/dev/null || die "openssl is needed to make the demo's certificates"
command -v curl >/dev/null || die "curl is needed to wait for the OIDC provider and the UI server"
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$TEMPORAL_PORT" "$UI_PORT" "$CODEC_PORT" "$OIDC_PORT"; do
  port_busy "$p" && die "port $p is in use (another demo or dev server?); stop it first"
done
mkdir -p "$DIR/certs" "$DIR/ui/config"
chmod 700 "$DIR"

# start, wait_for, and stopping everything on exit or Ctrl-C.
LOG_DIR=$DIR
source scripts/lib/processes.sh

say "building the OIDC provider and the examples"
(cd internal/oidcprovider && GOWORK=off go build -o ../../bin/oidc-provider .)
go build -o bin/example-worker ./examples/worker
go build -o bin/example-starter ./examples/starter
# The temporalio/ui image's configuration template: every setting from a
# TEMPORAL_* variable, as in deploy/ and docs/OPERATIONS.md.
install -m 644 internal/testenv/uiserverconfig/docker.yaml "$DIR/ui/config/docker.yaml"
printf 'host: 127.0.0.1\n' >"$DIR/ui/config/base.yaml"

certs=$DIR/certs
# Made once and reused while valid for another hour (they last 30 days).
if ! { [[ -f $certs/server.crt ]] && openssl x509 -checkend 3600 -noout -in "$certs/server.crt" >/dev/null; }; then
  say "making a CA and a certificate for localhost in $certs"
  openssl req -x509 -new -nodes -days 30 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$certs/ca.key" -out "$certs/ca.crt" -subj "/CN=envelope demo CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$certs/server.key" -out "$certs/server.csr" -subj "/CN=localhost" 2>/dev/null
  openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" -CAcreateserial \
    -days 30 -out "$certs/server.crt" -extfile <(printf '%s\n' \
      "subjectAltName=DNS:localhost,IP:127.0.0.1" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth") 2>/dev/null
  chmod 600 "$certs"/*.key
fi
spki=$(openssl x509 -in "$certs/server.crt" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)

keys=$DIR/keys.json
[[ -f $keys ]] || bin/codec-server keys new --file "$keys" >/dev/null
secret=$(openssl rand -hex 16)
cat >"$DIR/oidc-provider.json" <<EOF
{"clients": [{"id": "$CLIENT_ID", "secret": "$secret", "redirect_uris": ["$UI_URL/auth/sso/callback"]}],
 "users": [
  {"id": "ada", "username": "ada", "password": "ada", "email": "ada@example.com", "name": "Ada Reader", "permissions": ["default:read"]},
  {"id": "mallory", "username": "mallory", "password": "mallory", "email": "mallory@example.com", "name": "Mallory Outsider", "permissions": ["billing:read"]}]}
EOF
chmod 600 "$DIR/oidc-provider.json"

say "starting the OIDC provider at $ISSUER"
start oidc-provider bin/oidc-provider --listen "127.0.0.1:$OIDC_PORT" --issuer "$ISSUER" --config "$DIR/oidc-provider.json"
wait_for "the OIDC provider" 30 curl -fsS "$ISSUER/.well-known/openid-configuration"

say "starting the codec server at $CODEC_URL"
start codec-server env -u CODEC_SERVER_KEYS_FILE -u VAULT_ADDR bin/codec-server \
  --listen "127.0.0.1:$CODEC_PORT" --tls-cert "$certs/server.crt" --tls-key "$certs/server.key" \
  --keys-file "$keys" --oidc-issuer "$ISSUER" --jwt-audience "$CLIENT_ID" --cors-origin "$UI_URL" \
  --audit-log "$DIR/audit.jsonl"
wait_for "the codec server" 30 bin/codec-server healthcheck --url "$CODEC_URL/healthz" --cacert "$certs/ca.crt"

say "starting the Temporal dev server on $TEMPORAL_ADDR (headless)"
start temporal bin/temporal server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" --headless --disable-config-file
wait_for "the Temporal dev server" 120 bin/temporal operator cluster health --address "$TEMPORAL_ADDR" --disable-config-file

say "starting the UI server at $UI_URL"
start ui-server env TEMPORAL_ADDRESS="$TEMPORAL_ADDR" TEMPORAL_UI_PORT="$UI_PORT" \
  TEMPORAL_AUTH_ENABLED=true TEMPORAL_AUTH_PROVIDER_URL="$ISSUER" \
  TEMPORAL_AUTH_CLIENT_ID="$CLIENT_ID" TEMPORAL_AUTH_CLIENT_SECRET="$secret" \
  TEMPORAL_AUTH_CALLBACK_URL="$UI_URL/auth/sso/callback" TEMPORAL_AUTH_SCOPES=openid,profile,email \
  TEMPORAL_CODEC_ENDPOINT="$CODEC_URL" TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true \
  TEMPORAL_CORS_ORIGINS="$UI_URL" TEMPORAL_CSRF_COOKIE_INSECURE=true \
  bin/ui-server --root "$DIR/ui" --config config --env docker start
wait_for "the UI server" 60 curl -fsS "http://127.0.0.1:$UI_PORT/healthz"

export TEMPORAL_ADDRESS=$TEMPORAL_ADDR TEMPORAL_NAMESPACE=default
unset TEMPORAL_API_KEY TEMPORAL_PROFILE CODEC_SERVER_KEYS_FILE VAULT_ADDR || true
say "starting the example worker"
start worker bin/example-worker --keys-file "$keys" --task-queue "$TASK_QUEUE"
wait_for "the worker" 60 grep -q "worker started" "$DIR/worker.log"
say "running the example starter"
wid="onboard-sso-$(date +%s)"
out=$(bin/example-starter --keys-file "$keys" --task-queue "$TASK_QUEUE" --workflow-id "$wid" 2>>"$DIR/starter.log") ||
  die "the starter failed; see $DIR/starter.log"
rid=$(printf '%s\n' "$out" | sed -n 's/.*run_id=\([^ ]*\).*/\1/p')

cat <<EOF

  1. Let your browser trust the codec server: open $CODEC_URL/healthz and
     accept the certificate (or trust $certs/ca.crt, or start Chromium with
     --ignore-certificate-errors-spki-list=$spki).
  2. Open $UI_URL/namespaces/default/workflows/$wid/$rid/history
     and sign in as ada / ada: the Input panel shows plaintext.
  3. In a private window, sign in as mallory / mallory: the payloads stay
     encrypted, and the codec server's audit log names mallory with a 403:
       grep mallory $DIR/audit.jsonl

  Logs, keys and certificates: $DIR/ (development only)
EOF
if [[ ${DEMO_EXIT_AFTER_START:-} == 1 ]]; then
  say "DEMO_EXIT_AFTER_START=1: stopping"
  exit 0
fi
say "running; press Ctrl-C to stop everything"
# Returns on Ctrl-C (the trap runs) or when a process stops by itself.
wait_any
report_exited
