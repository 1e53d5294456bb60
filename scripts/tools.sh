#!/usr/bin/env bash
# Builds (once) the real components the integration tests and `make demo`
# need, into the git-ignored bin/ folder:
#   bin/temporal   Temporal CLI v1.5.1 (dev server + Web UI), from the Go module proxy
#   bin/vault      HashiCorp Vault v1.19.0, via ../shared/vault/build-vault.sh
#   chromium       Debian's chromium package (apt), for the Web UI test
# Each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
mkdir -p bin
export GOFLAGS=-buildvcs=false

want=${*:-temporal vault chromium}

build_temporal() {
  if [[ -x bin/temporal ]]; then return; fi
  echo "tools: building the temporal CLI v1.5.1 from the Go module proxy (minutes, once)"
  GOBIN="$ROOT/bin" go install github.com/temporalio/cli/cmd/temporal@v1.5.1
}

build_vault() {
  if [[ -x bin/vault ]]; then return; fi
  local script=""
  for s in "${VAULT_BUILD_SCRIPT:-}" "$ROOT/../shared/vault/build-vault.sh" /work/shared/vault/build-vault.sh; do
    if [[ -n "$s" && -f "$s" ]]; then script=$s; break; fi
  done
  if [[ -z "$script" ]]; then
    echo "tools: shared/vault/build-vault.sh not found (set VAULT_BUILD_SCRIPT); it builds Vault from the Go module proxy" >&2
    exit 1
  fi
  echo "tools: building Vault v1.19.0 from the Go module proxy (minutes, once)"
  bash "$script" "$ROOT/bin/vault"
}

install_chromium() {
  if command -v chromium >/dev/null 2>&1; then return; fi
  echo "tools: installing Debian's chromium"
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

pids=()
for t in $want; do
  case $t in
    temporal) build_temporal & pids+=($!) ;;
    vault) build_vault & pids+=($!) ;;
    chromium) install_chromium & pids+=($!) ;;
    *) echo "tools: unknown tool $t" >&2; exit 2 ;;
  esac
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
