#!/usr/bin/env bash
# The one place that decides which external programs the demo and the tests
# use. For each tool asked for (default: all of them):
#
#   temporal   the Temporal CLI (dev server + Web UI). A `temporal` on PATH
#              is used as it is when it has `server start-dev`; otherwise
#              v1.5.1 is built from the Go module proxy (~5 min, once).
#   vault      HashiCorp Vault, for the Vault tests. A `vault` on PATH is
#              used as it is; otherwise v1.19.0 is built from the Go module
#              proxy by scripts/build-vault.sh (~5 min, once).
#   ui-server  the Temporal UI server v2.42.1 (the one the CLI v1.5.1
#              embeds), for the single-sign-on tests; built from the Go
#              module proxy (~2 min, once).
#   local-kms  an AWS KMS API emulator (github.com/nsmithuk/local-kms), for
#              the AWS KMS keyring's tests. A `local-kms` on PATH is used
#              as it is; otherwise it is built from the Go module proxy
#              into bin/ (under a minute, once).
#   chromium   a headless Chromium for the Web UI tests. One on PATH is
#              used; otherwise Debian's package is installed with apt when
#              this runs as root (CI) or with password-less sudo, and
#              otherwise it says how to install it and fails.
#
# The decision is recorded in bin/: bin/<tool> is either a symbolic link to
# the program found on PATH or the program built here. Everything else
# (scripts/demo.sh, internal/testenv) runs bin/<tool>, so they all agree.
# Each tool's line says which one was taken.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P) # physical, as leads_here compares
mkdir -p bin
export GOFLAGS=${GOFLAGS:--buildvcs=false}

TEMPORAL_VERSION=v1.5.1
VAULT_VERSION=v1.19.0
UI_SERVER_VERSION=v2.42.1
LOCAL_KMS_VERSION=v0.0.0-20260228092603-2a5e92d09ab6
VAULT_MIN=1.15.0 # transit datakey + batch decrypt as the tests use them

say() { printf 'tools: %s\n' "$*"; }
fail() { printf 'tools: %s\n' "$*" >&2; exit 1; }

# leads_here P: P is in our own bin/, or is a link whose chain passes
# through it (bin/ on PATH, possibly under another name). Portable: plain
# readlink and cd, no GNU realpath options.
leads_here() {
  local p=$1 n=0 d t
  while :; do
    d=$(cd "$(dirname "$p")" 2>/dev/null && pwd -P) || return 1
    [[ $d == "$ROOT/bin" ]] && return 0
    [[ -L $p ]] || return 1
    t=$(readlink "$p")
    [[ $t == /* ]] || t=$d/$t
    p=$t
    n=$((n + 1))
    ((n < 40)) || return 1
  done
}

# on_path NAME: the program NAME on PATH, as PATH names it (so a package
# manager's upgrade behind a stable link keeps working), unless it is our
# own bin/NAME.
on_path() {
  local p
  p=$(command -v "$1" 2>/dev/null) || return 1
  [[ $p == /* ]] || p=$PWD/$p
  leads_here "$p" && return 1
  printf '%s\n' "$p"
}

# link NAME PATH: record that bin/NAME is PATH.
link() { ln -sfn "$2" "bin/$1"; }

# usable NAME: bin/NAME runs: built here, or linked earlier to a program
# that is still there (bin/ itself may be on PATH).
usable() { [[ -x bin/$1 ]]; }

# describe NAME: how bin/NAME came to be, for the tool's line.
describe() {
  if [[ -L bin/$1 ]]; then
    printf 'bin/%s, linked earlier to %s' "$1" "$(readlink "bin/$1")"
  else
    printf 'bin/%s, built here' "$1"
  fi
}

# version_ge A B: version A >= version B (leading v ignored).
version_ge() { [[ $(printf '%s\n%s\n' "${1#v}" "${2#v}" | sort -V | head -1) == "${2#v}" ]]; }

temporal_tool() {
  local p v
  if p=$(on_path temporal); then
    v=$("$p" --version 2>/dev/null | head -1 || true)
    if ! "$p" server start-dev --help >/dev/null 2>&1; then
      fail "temporal on PATH ($p, ${v:-unknown version}) has no \`server start-dev\`; envelope needs the Temporal CLI $TEMPORAL_VERSION or newer (https://docs.temporal.io/cli); upgrade it, or take it off PATH and \`make tools\` builds $TEMPORAL_VERSION into bin/"
    fi
    if ! grep -q -- '--ui-codec-endpoint' <<<"$("$p" server start-dev --help 2>&1)" ||
      ! grep -q -- '--disable-config-file' <<<"$("$p" workflow show --help 2>&1)"; then
      fail "temporal on PATH ($p, ${v:-unknown version}) is too old (no --ui-codec-endpoint or --disable-config-file); envelope needs the Temporal CLI $TEMPORAL_VERSION or newer; upgrade it, or take it off PATH and \`make tools\` builds $TEMPORAL_VERSION into bin/"
    fi
    link temporal "$p"
    say "temporal: $p from PATH (${v:-unknown version})"
    return
  fi
  if ! usable temporal; then
    rm -f bin/temporal
    say "temporal: not on PATH; building the Temporal CLI $TEMPORAL_VERSION from the Go module proxy into bin/ (about 5 minutes, once)"
    GOBIN="$ROOT/bin" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_VERSION"
  fi
  say "temporal: $(describe temporal) ($(bin/temporal --version 2>/dev/null | head -1))"
}

vault_tool() {
  local p v
  if p=$(on_path vault); then
    v=$("$p" version 2>/dev/null | head -1 || true)
    local num
    num=$(sed -n 's/^Vault v\([0-9][0-9.]*\).*/\1/p' <<<"$v")
    if [[ -z $num ]] || ! version_ge "$num" "$VAULT_MIN"; then
      fail "vault on PATH ($p, ${v:-unknown version}) is too old or not HashiCorp Vault; the tests need Vault v$VAULT_MIN or newer (tested with $VAULT_VERSION); upgrade it, or take it off PATH and \`make tools\` builds $VAULT_VERSION into bin/"
    fi
    link vault "$p"
    say "vault: $p from PATH ($v)"
    return
  fi
  if ! usable vault; then
    rm -f bin/vault
    say "vault: not on PATH; building Vault $VAULT_VERSION from the Go module proxy into bin/ (about 5 minutes, once)"
    VAULT_VERSION=$VAULT_VERSION scripts/build-vault.sh "$ROOT/bin/vault" >/dev/null
  fi
  say "vault: $(describe vault) ($(bin/vault version 2>/dev/null | head -1))"
}

ui_server_tool() {
  if ! usable ui-server; then
    rm -f bin/ui-server
    say "ui-server: building the Temporal UI server $UI_SERVER_VERSION from the Go module proxy into bin/ (minutes, once)"
    local tmp
    tmp=$(mktemp -d)
    GOBIN=$tmp go install "github.com/temporalio/ui-server/v2/cmd/server@$UI_SERVER_VERSION"
    mv "$tmp/server" bin/ui-server
    rmdir "$tmp"
  fi
  say "ui-server: bin/ui-server, built here ($UI_SERVER_VERSION)"
}

local_kms_tool() {
  local p
  if p=$(on_path local-kms); then
    link local-kms "$p"
    say "local-kms: $p from PATH"
    return
  fi
  if ! usable local-kms; then
    rm -f bin/local-kms
    say "local-kms: not on PATH; building github.com/nsmithuk/local-kms $LOCAL_KMS_VERSION from the Go module proxy into bin/ (under a minute, once)"
    # It has no go.sum entries of its own for our module graph: -mod=mod.
    GOBIN="$ROOT/bin" GOFLAGS="$GOFLAGS -mod=mod" go install "github.com/nsmithuk/local-kms@$LOCAL_KMS_VERSION"
  fi
  say "local-kms: $(describe local-kms) ($LOCAL_KMS_VERSION)"
}

chromium_tool() {
  local p n
  if [[ -n ${CHROMIUM:-} ]]; then
    [[ -x $CHROMIUM ]] || fail "chromium: CHROMIUM=$CHROMIUM is not an executable"
    say "chromium: $CHROMIUM (from \$CHROMIUM)"
    return
  fi
  for n in chromium chromium-browser google-chrome google-chrome-stable; do
    if p=$(command -v "$n" 2>/dev/null) && "$p" --version >/dev/null 2>&1; then
      say "chromium: $p from PATH ($("$p" --version 2>/dev/null | head -1))"
      return
    fi
  done
  local how="install Debian's chromium (sudo apt-get install chromium) or point CHROMIUM at a Chromium/Chrome binary, then run make test again"
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      fail "chromium: missing, and this is not root: $how"
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || fail "chromium: missing, and there is no apt-get here: $how"
  say "chromium: not on PATH; installing Debian's chromium with apt-get"
  local log
  log=$(mktemp)
  if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
    tail -n 5 "$log" >&2
    rm -f "$log"
    fail "chromium: apt-get could not install it (above): $how"
  fi
  rm -f "$log"
  p=$(command -v chromium) || fail "chromium: apt-get finished but there is no chromium on PATH: $how"
  say "chromium: $p, installed with apt-get"
}

want=${*:-temporal vault ui-server local-kms chromium}
for t in $want; do
  case $t in
    temporal | vault | ui-server | local-kms | chromium) ;;
    *) fail "unknown tool $t (known: temporal vault ui-server local-kms chromium)" ;;
  esac
done
pids=()
for t in $want; do
  case $t in
    temporal) temporal_tool & ;;
    vault) vault_tool & ;;
    ui-server) ui_server_tool & ;;
    local-kms) local_kms_tool & ;;
    chromium) chromium_tool & ;;
    *) fail "unknown tool $t (known: temporal vault ui-server local-kms chromium)" ;;
  esac
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
