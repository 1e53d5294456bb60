package keyring

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrErased means a payload's data key was wrapped under a data subject's
// key that has been shredded (or never existed in the store the key ID
// names): the payload can never be opened again. See docs/ERASURE.md.
var ErrErased = errors.New("keyring: data subject key erased")

// SubjectKeyIDPrefix starts the key ID of every data key wrapped under a
// data subject's key ("subject/<store>/<subject>/..."). Keyrings other
// than a subject keyring never hand out such IDs.
const SubjectKeyIDPrefix = "subject/"

// MaxSubjectLen bounds a data subject ID.
const MaxSubjectLen = 128

// IsSubjectKeyID reports whether keyID names a data subject's key.
func IsSubjectKeyID(keyID string) bool { return strings.HasPrefix(keyID, SubjectKeyIDPrefix) }

// SubjectKeyring is implemented by keyrings that hold a key per data
// subject (keyring/subject). The codec seals a payload that belongs to a
// subject under a data key from NewSubjectDataKey; its key ID starts with
// SubjectKeyIDPrefix so that UnwrapDataKeys finds the subject's key again
// with no other context.
type SubjectKeyring interface {
	Keyring
	// NewSubjectDataKey returns a fresh data key wrapped under subject's
	// key, creating that key if it does not exist yet.
	NewSubjectDataKey(ctx context.Context, namespace, subject string) (DataKey, error)
}

// ValidSubject checks a data subject ID: 1 to MaxSubjectLen bytes of
// letters, digits, '-', '_', '.' and '@', starting and ending with a
// letter, digit or '_'. The ID becomes part of key IDs, file names and
// Vault key names (whose rules these are), so nothing else is allowed.
func ValidSubject(s string) error {
	if s == "" || len(s) > MaxSubjectLen {
		return fmt.Errorf("keyring: data subject ID is %d bytes, want 1 to %d", len(s), MaxSubjectLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		word := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
		switch {
		case word:
		case (c == '-' || c == '.' || c == '@') && i > 0 && i < len(s)-1:
		default:
			return fmt.Errorf("keyring: data subject ID has a character outside [A-Za-z0-9_.@-] (or '-', '.', '@' at an end) at byte %d", i)
		}
	}
	return nil
}
