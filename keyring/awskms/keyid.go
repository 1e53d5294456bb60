package awskms

import (
	"errors"
	"fmt"
	"strings"
)

// KeyIDPrefix starts the key ID of every data key wrapped by this keyring,
// so IDs from different keyrings never collide. The "v1" is the keyring's
// wrap format: the encryption context it binds (see [EncryptionContext]).
const KeyIDPrefix = "aws-kms/v1/"

// Bounds on key IDs and wrapped keys, which come from payloads (untrusted
// input).
const (
	maxKeyIDLen = 256
	// maxWrapped bounds a wrapped data key. A KMS ciphertext of a 32-byte
	// data key is under 200 bytes (local-kms: 140).
	maxWrapped = 1024
)

// errKeyID is wrapped by every key ID parse error.
var errKeyID = errors.New("malformed aws kms key id")

// KeyID names the KMS key that wrapped a data key. Its string form, stored
// in every payload, is "aws-kms/v1/<key ARN>", for example
// "aws-kms/v1/arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".
type KeyID struct {
	ARN string // the KMS key's ARN (never an alias)
}

// String returns the key ID in the form ParseKeyID accepts.
func (id KeyID) String() string { return KeyIDPrefix + id.ARN }

// ParseKeyID parses a key ID written by [KeyID.String]. It accepts exactly
// the strings String produces for valid key ARNs, so a parsed ID
// re-encodes to the same bytes.
func ParseKeyID(s string) (KeyID, error) {
	if len(s) > maxKeyIDLen {
		return KeyID{}, fmt.Errorf("%w: %d bytes, at most %d allowed", errKeyID, len(s), maxKeyIDLen)
	}
	arn, ok := strings.CutPrefix(s, KeyIDPrefix)
	if !ok {
		return KeyID{}, fmt.Errorf("%w: does not start with %q", errKeyID, KeyIDPrefix)
	}
	if !isKeyARN(arn) {
		return KeyID{}, fmt.Errorf("%w: %q is not a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>)", errKeyID, arn)
	}
	return KeyID{ARN: arn}, nil
}

// isKeyARN reports whether s is a KMS key ARN:
// arn:<partition>:kms:<region>:<12-digit account>:key/<key id>.
func isKeyARN(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kms" {
		return false
	}
	if !isName(parts[1], "-") || !isName(parts[3], "-") || len(parts[4]) != 12 || !isDigits(parts[4]) {
		return false
	}
	id, ok := strings.CutPrefix(parts[5], "key/")
	return ok && len(id) <= 128 && isName(id, "-")
}

// isAliasName reports whether s is a KMS alias name: "alias/" followed by
// letters, digits, '/', '_' and '-' (at most 256 bytes in all).
func isAliasName(s string) bool {
	name, ok := strings.CutPrefix(s, "alias/")
	return ok && len(s) <= 256 && isName(name, "/_-")
}

// isAliasARN reports whether s is a KMS alias ARN:
// arn:<partition>:kms:<region>:<account>:alias/<name>.
func isAliasARN(s string) bool {
	parts := strings.Split(s, ":")
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "kms" &&
		isName(parts[1], "-") && isName(parts[3], "-") && len(parts[4]) == 12 && isDigits(parts[4]) &&
		isAliasName(parts[5])
}

// validKey reports whether s names a KMS key the way KMS accepts it: a key
// ID, a key ARN, an alias name or an alias ARN.
func validKey(s string) error {
	switch {
	case s == "":
		return errors.New("key is empty")
	case isKeyARN(s), isAliasARN(s), isAliasName(s):
		return nil
	case !strings.Contains(s, ":") && !strings.Contains(s, "/") && len(s) <= 128 && isName(s, "-"):
		return nil // a key ID such as 1234abcd-12ab-34cd-56ef-1234567890ab or mrk-...
	}
	return fmt.Errorf("%q is not a KMS key ID, key ARN, alias name (alias/NAME) or alias ARN", s)
}

// isName reports whether s is non-empty and holds only ASCII letters,
// digits and the bytes of extra.
func isName(s, extra string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
