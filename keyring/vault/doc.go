// Package vault is a keyring backed by HashiCorp Vault's transit secrets
// engine: the key-encryption keys never leave Vault, the codec only ever
// holds data keys.
//
// # Data keys
//
// [Keyring.NewDataKey] asks transit/datakey/plaintext/<key> for a fresh
// 256-bit data key; Vault returns it in plaintext and wrapped under the
// transit key. The wrapped form, Vault's "vault:vN:..." ciphertext string,
// is what each payload stores. [Keyring.UnwrapDataKeys] sends all wrapped
// keys of one decode request that name the same transit key to
// transit/decrypt/<key> as one batch_input, so a decode request costs at
// most one Vault round trip per transit key, and none when the codec has
// the data keys cached.
//
// # Key IDs and rotation
//
// A key ID names the transit mount, the key and the key version:
// "vault/<mount>/<key>/v<N>" (see [KeyID]); N comes from the ciphertext's
// "vault:vN:" prefix. Rotating the key in Vault
// (transit/keys/<key>/rotate) makes new payloads carry the new version,
// while old payloads keep decoding until min_decryption_version is raised
// past their version; then they fail with keyring.ErrUnknownKey. The keyring
// reads the latest version of the keys it seals with every
// Config.KeyPollInterval (10s) and implements keyring.Rotating, so the codec
// stops sealing under data keys of an older version within that time.
//
// # Namespaces
//
// With a key name containing {namespace} (for example
// "temporal-{namespace}") each Temporal namespace has its own transit key.
// NewDataKey uses the namespace's key, and UnwrapDataKeys refuses, with
// keyring.ErrPermission, a key ID naming any other key: whoever may decode
// namespace A cannot decode namespace B's payloads through A. An empty
// namespace means "default".
//
// # Authentication
//
// [Config] takes a token, an AppRole role and secret ID, or a Kubernetes
// role (the pod's service account token is read at every login). Renewable
// tokens are renewed by vault/api's lifetime watcher; when a token can no
// longer be renewed (its max TTL) or Vault reports it invalid, the keyring
// logs in again. A configured token that runs out cannot be replaced: the
// keyring logs an error and calls fail with keyring.ErrPermission.
//
// # Errors
//
// Every call has a timeout ([Config.Timeout]) and is retried with
// exponential backoff ([Config.MaxRetries]) when Vault is unreachable,
// sealed, slow or answers 5xx or 429; other refusals are not retried.
// Errors name the operation, the transit key and Vault's reason, never the
// token or key material, and wrap the keyring sentinels: 403 is
// keyring.ErrPermission; a missing key or key version is
// keyring.ErrUnknownKey; a wrapped key Vault cannot decrypt is
// keyring.ErrUnwrap; unreachable, sealed, 5xx and timeouts are
// keyring.ErrUnavailable. docs/VAULT.md has the policy and the operator's
// view of each error.
package vault
