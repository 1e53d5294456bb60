#!/bin/sh
# Enables Vault's transit engine and creates the key the codec server wraps
# data keys with. Run once by the vault-init service; safe to run again.
set -eu

mount=${TRANSIT_MOUNT:-transit}
key=${TRANSIT_KEY:-temporal}

if vault secrets list -format=json | grep -q "\"${mount}/\""; then
  echo "vault-init: ${mount}/ already enabled"
else
  vault secrets enable -path="${mount}" transit
fi

# Writing an existing key's config is a no-op, so this is idempotent too.
vault write -f "${mount}/keys/${key}" >/dev/null
vault read "${mount}/keys/${key}" >/dev/null
echo "vault-init: ${mount}/keys/${key} ready"
