#!/usr/bin/env bash
# `make demo` (after `make build` and `scripts/tools.sh temporal`, which
# takes the temporal CLI from PATH or builds it into bin/): end-to-end
# encryption on your machine. Needs only Go and the temporal CLI. Starts
#   - the Temporal dev server and its Web UI (bin/temporal server start-dev),
#     with the UI's codec endpoint pointing at the codec server,
#   - the codec server on its embedded default (127.0.0.1:8081, the
#     development key file .data/dev-keyring.json, CORS for the dev UI, no
#     auth on loopback),
#   - the example worker, then the example starter with a customer record,
# and prints the Web UI address and a CLI command that shows the decoded
# history. Ctrl-C stops everything it started, says so, and exits 0 (so
# make reports no error for a deliberate stop).
#
# Settings (environment):
#   DEMO_TEMPORAL_PORT, DEMO_UI_PORT, DEMO_CODEC_PORT   ports (7233, 8233, 8081);
#       a non-default UI or codec port gives the codec server --listen and
#       --cors-origin flags instead of its embedded default
#   DEMO_EXIT_AFTER_START=1   stop everything and exit once the starter is done
#   DEMO_LOG_DIR              where the processes log (.data/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export GOFLAGS=${GOFLAGS:--buildvcs=false}

TEMPORAL_PORT=${DEMO_TEMPORAL_PORT:-7233}
UI_PORT=${DEMO_UI_PORT:-8233}
CODEC_PORT=${DEMO_CODEC_PORT:-8081}
LOG_DIR=${DEMO_LOG_DIR:-.data/demo}
KEYS=.data/dev-keyring.json # the codec server's embedded default
TASK_QUEUE=envelope-demo
TEMPORAL_ADDR=127.0.0.1:$TEMPORAL_PORT
CODEC_URL=http://127.0.0.1:$CODEC_PORT
UI_URL=http://localhost:$UI_PORT

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

for b in bin/temporal bin/codec-server; do
  [[ -x $b ]] || die "$b is missing; run \`make demo\` (it builds bin/codec-server and links or builds bin/temporal)"
done

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$TEMPORAL_PORT" "$UI_PORT" "$CODEC_PORT"; do
  if port_busy "$p"; then
    die "port $p is in use (another demo or dev server?); stop it or set DEMO_TEMPORAL_PORT, DEMO_UI_PORT, DEMO_CODEC_PORT"
  fi
done

mkdir -p "$LOG_DIR" .data
chmod 700 .data

# start, wait_for, and stopping everything on exit or Ctrl-C.
source scripts/lib/processes.sh

say "building the example worker and starter"
go build -o bin/example-worker ./examples/worker
go build -o bin/example-starter ./examples/starter

say "starting the Temporal dev server on $TEMPORAL_ADDR, Web UI on $UI_URL"
start temporal bin/temporal server start-dev \
  --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$UI_PORT" \
  --ui-codec-endpoint "$CODEC_URL" --disable-config-file

codec_args=()
if [[ $UI_PORT != 8233 || $CODEC_PORT != 8081 ]]; then
  codec_args=(--listen "127.0.0.1:$CODEC_PORT"
    --cors-origin "http://localhost:$UI_PORT" --cors-origin "http://127.0.0.1:$UI_PORT")
fi
say "starting the codec server on $CODEC_URL ${codec_args[*]:-(embedded default)}"
# The environment must not override the embedded default.
start codec-server env -u CODEC_SERVER_KEYS_FILE -u VAULT_ADDR bin/codec-server ${codec_args[@]+"${codec_args[@]}"}

wait_for "the Temporal dev server" 120 bin/temporal operator cluster health --address "$TEMPORAL_ADDR" --disable-config-file
wait_for "the Web UI" 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$UI_PORT"
wait_for "the codec server" 30 bin/codec-server healthcheck --url "$CODEC_URL/healthz"

# The examples read the usual Temporal client variables and the codec
# server's keyring flags.
export TEMPORAL_ADDRESS=$TEMPORAL_ADDR TEMPORAL_NAMESPACE=default
unset TEMPORAL_API_KEY TEMPORAL_PROFILE CODEC_SERVER_KEYS_FILE VAULT_ADDR || true

say "starting the example worker"
start worker bin/example-worker --keys-file "$KEYS" --task-queue "$TASK_QUEUE"
wait_for "the worker" 60 grep -q "worker started" "$LOG_DIR/worker.log"

say "running the example starter"
wid="onboard-demo-$(date +%s)"
out=$(bin/example-starter --keys-file "$KEYS" --task-queue "$TASK_QUEUE" --workflow-id "$wid" 2>>"$LOG_DIR/starter.log") ||
  die "the starter failed; see $LOG_DIR/starter.log"
printf '%s\n' "$out" | sed 's/^/  starter: /'
rid=$(printf '%s\n' "$out" | sed -n 's/.*run_id=\([^ ]*\).*/\1/p')

cat <<EOF

Temporal stored only ciphertext; the codec server decrypts it for you.

  Web UI (decoded through the codec server):
    $UI_URL/namespaces/default/workflows/$wid/$rid/history

  The history as Temporal stores it (binary/encrypted payloads):
    bin/temporal workflow show --address $TEMPORAL_ADDR -w $wid --detailed

  The decoded history:
    bin/temporal workflow show --address $TEMPORAL_ADDR -w $wid --detailed --codec-endpoint $CODEC_URL

  Logs: $LOG_DIR/   Key file: $KEYS (development only)
EOF

if [[ ${DEMO_EXIT_AFTER_START:-} == 1 ]]; then
  say "DEMO_EXIT_AFTER_START=1: stopping"
  exit 0
fi
say "running; press Ctrl-C to stop everything"
# Returns on Ctrl-C (the trap runs) or when a process stops by itself.
wait_any
report_exited
