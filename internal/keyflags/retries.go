package keyflags

import (
	"errors"
	"strconv"

	"github.com/envelopecodec/envelope/keyring/vault"
)

// retriesValue is the --vault-max-retries flag: a number of retries where
// 0 means none. vault.Config.MaxRetries says 0 for its default and -1 for
// none; the flag translates.
type retriesValue struct{ p *int }

// String returns the number of retries the setting gives.
func (r retriesValue) String() string {
	switch {
	case r.p == nil || *r.p == 0:
		return strconv.Itoa(vault.DefaultMaxRetries)
	case *r.p < 0:
		return "0"
	}
	return strconv.Itoa(*r.p)
}

// Set parses a number of retries, 0 or more.
func (r retriesValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a number of retries, 0 or more")
	}
	if n == 0 {
		n = -1
	}
	*r.p = n
	return nil
}
