package keyring

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrErased means a payload's data key was wrapped under a data subject's
// key that has been shredded, as the store's tombstone for that key
// records: the payload can never be opened again. Sealing for a shredded
// data subject fails with it too, until an operator re-admits the subject.
// A subject key that never existed is ErrUnknownKey, not ErrErased. See
// docs/ERASURE.md.
var ErrErased = errors.New("keyring: data subject key erased")

// SubjectKeyIDPrefix starts the key ID of every data key wrapped under a
// data subject's key ("subject/<store>/<handle>/<generation>", the handle
// being a pseudonym of the namespace and subject, never the subject ID).
// Keyrings other than a subject keyring never hand out such IDs.
const SubjectKeyIDPrefix = "subject/"

// SubjectHandleLen is the length of a data subject handle: 32 lowercase
// hex digits (128 bits of a keyed HMAC).
const SubjectHandleLen = 32

// ValidSubjectHandle checks that h is SubjectHandleLen lowercase hex
// digits.
func ValidSubjectHandle(h string) error {
	if len(h) != SubjectHandleLen {
		return fmt.Errorf("keyring: data subject handle is %d bytes, want %d", len(h), SubjectHandleLen)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("keyring: data subject handle has a character other than [0-9a-f] at byte %d", i)
		}
	}
	return nil
}

// CanonicalSubject validates a data subject ID (ValidSubject) and returns
// its canonical form: ASCII lower case. Subject IDs are case-insensitive:
// "Alice@Example.com" and "alice@example.com" are one data subject with
// one key.
func CanonicalSubject(s string) (string, error) {
	if err := ValidSubject(s); err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}

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

// ShredNotifier is implemented by keyrings that shred data subject keys
// in-process (keyring/subject): NotifyShred registers f to be called
// after each such shred, so that a codec drops its cached data subject
// keys at once rather than within its SubjectKeyMaxAge.
type ShredNotifier interface {
	NotifyShred(f func())
}

// ValidSubject checks a data subject ID: 1 to MaxSubjectLen bytes of
// letters, digits, '-', '_', '.' and '@', starting and ending with a
// letter, digit or '_'. Stores never write the ID anywhere: key IDs, file
// names and Vault key names carry a keyed pseudonym of it (a handle).
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
