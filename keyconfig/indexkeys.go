package keyconfig

import (
	"fmt"

	"github.com/envelopecodec/envelope/keyring"
)

// IndexKeys returns the blind-index keys of the opened keyring (package
// blindindex, docs/SEARCH.md): a key file's keys derive them, Vault
// transit computes HMACs with the transit key. They are the keyring's own,
// never a data subject's: a subject store does not change them. It fails
// when the source has no index keys.
func (k *Keys) IndexKeys() (keyring.IndexKeys, error) {
	if ik, ok := k.base.(keyring.IndexKeys); ok {
		return ik, nil
	}
	return nil, fmt.Errorf("keyconfig: the %s keyring holds no blind-index keys", k.Source)
}
