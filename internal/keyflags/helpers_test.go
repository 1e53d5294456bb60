package keyflags_test

import (
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

type keyringWrapped = keyring.WrappedKey

func vaultCfg(addr, key string) vault.Config { return vault.Config{Address: addr, KeyName: key} }
