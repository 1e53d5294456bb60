package keyconfig_test

import (
	"github.com/envelopecodec/envelope/keyconfig"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

type keyringWrapped = keyring.WrappedKey

func vaultCfg(addr, key string) keyconfig.VaultSource {
	return keyconfig.VaultSource{Config: vault.Config{Address: addr, KeyName: key}}
}
