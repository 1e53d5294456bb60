package vault

import "github.com/hashicorp/vault/api"

// APIClient returns the keyring's authenticated Vault client, whose token
// the keyring keeps renewed (and logs in again with AppRole or Kubernetes
// auth) until Close. Other stores on the same Vault use it, e.g. the data
// subject keys of keyring/subject. Callers must not change its token.
func (k *Keyring) APIClient() *api.Client { return k.client }
