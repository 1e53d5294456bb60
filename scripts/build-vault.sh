#!/usr/bin/env bash
# Builds HashiCorp Vault (server included) from the Go module proxy into the
# path given as the first argument (default bin/vault). Used by
# scripts/tools.sh when no `vault` is on PATH; the tests start it in -dev mode.
#
# Why this is not `go install`: Vault's go.mod replaces its own api/ and sdk/
# modules with folders that the module zip leaves out, and `go install`
# refuses modules with replace directives. We copy the module, drop those
# replaces, and build against the api/sdk versions Vault's go.mod requires
# (the ones it was released with). `-tags minimal` leaves out the external
# plugins; transit, kv and the token/approle/kubernetes auth methods stay.
set -euo pipefail

VERSION=${VAULT_VERSION:-v1.19.0}
out=${1:-bin/vault}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd -P)/$(basename "$out")

export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp"

dir=$(go mod download -json "github.com/hashicorp/vault@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $dir && -d $dir ]] || { echo "build-vault: could not download github.com/hashicorp/vault@$VERSION" >&2; exit 1; }

cp -r "$dir" src
chmod -R u+w src
cd src

# Drop only the replaces that point into the module's own folders ("./api",
# "./sdk", ...), which the module zip leaves out; the others name real modules.
drops=()
while read -r mod; do drops+=("-dropreplace=$mod"); done < <(
  go mod edit -json | awk '
    /"Old": \{/ { inold = 1; next }
    inold && /"Path":/ { gsub(/[",]/, "", $2); old = $2; inold = 0; next }
    /"New": \{/ { innew = 1; next }
    innew && /"Path":/ { gsub(/[",]/, "", $2); if ($2 ~ /^\.\//) print old; innew = 0 }')
((${#drops[@]})) || { echo "build-vault: no local replace directives found; has Vault's go.mod changed?" >&2; exit 1; }
go mod edit "${drops[@]}"

mkdir -p "$(dirname "$out")"
go build -mod=mod -tags minimal -trimpath -ldflags "-s -w" -o "$out" .
"$out" version
