package keyconfig

import (
	"context"

	"github.com/envelopecodec/envelope/keyring"
)

// WrapSubjects adds the data subject store s to base as Open does, for
// tests that bring their own base keyring.
func WrapSubjects(s Subjects, base keyring.Keyring, c Config) (keyring.Keyring, error) {
	c.Subjects = s
	store, err := c.Subjects.open(context.Background(), base, &c, false)
	if err != nil || store == nil {
		return base, err
	}
	return wrapSubjects(base, store)
}
