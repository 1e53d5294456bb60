package vault

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KeyIDPrefix starts the key ID of every data key wrapped by Vault transit,
// so IDs from different keyrings never collide.
const KeyIDPrefix = "vault/"

// Bounds on the parts of a key ID and on a wrapped data key. Key IDs and
// wrapped keys come from payloads, which are untrusted input.
const (
	maxKeyIDLen     = 256
	maxNameLen      = 128
	maxVersion      = 1<<31 - 1
	maxCiphertext   = 512 // "vault:vN:" + base64 of nonce ‖ 32-byte key ‖ tag is ~ 90 bytes
	ciphertextStart = "vault:v"
)

// errKeyID is wrapped by every key ID parse error.
var errKeyID = errors.New("malformed vault key id")

// KeyID names the transit key version that wrapped a data key. Its string
// form, stored in every payload, is "vault/<mount>/<key>/v<version>", for
// example "vault/transit/temporal/v3". The mount may contain slashes.
type KeyID struct {
	Mount   string // transit mount path, e.g. "transit"
	Key     string // transit key name, e.g. "temporal-default"
	Version int    // key version, from the "vault:vN:" ciphertext prefix
}

// String returns the key ID in the form ParseKeyID accepts.
func (id KeyID) String() string {
	return KeyIDPrefix + id.Mount + "/" + id.Key + "/v" + strconv.Itoa(id.Version)
}

// ParseKeyID parses a key ID written by [KeyID.String]. It accepts exactly
// the strings String produces for valid mounts, key names and versions, so
// a parsed ID re-encodes to the same bytes.
func ParseKeyID(s string) (KeyID, error) {
	if len(s) > maxKeyIDLen {
		return KeyID{}, fmt.Errorf("%w: %d bytes, at most %d allowed", errKeyID, len(s), maxKeyIDLen)
	}
	rest, ok := strings.CutPrefix(s, KeyIDPrefix)
	if !ok {
		return KeyID{}, fmt.Errorf("%w: does not start with %q", errKeyID, KeyIDPrefix)
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return KeyID{}, fmt.Errorf("%w: no version", errKeyID)
	}
	v, ok := parseVersion(strings.TrimPrefix(rest[i+1:], "v"))
	if !ok || !strings.HasPrefix(rest[i+1:], "v") {
		return KeyID{}, fmt.Errorf("%w: version is not v<N>", errKeyID)
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '/')
	if j < 0 {
		return KeyID{}, fmt.Errorf("%w: no mount", errKeyID)
	}
	id := KeyID{Mount: rest[:j], Key: rest[j+1:], Version: v}
	if err := validMount(id.Mount); err != nil {
		return KeyID{}, fmt.Errorf("%w: %v", errKeyID, err)
	}
	if err := validName(id.Key); err != nil {
		return KeyID{}, fmt.Errorf("%w: key %v", errKeyID, err)
	}
	return id, nil
}

// parseVersion parses a positive decimal without sign or leading zeros.
func parseVersion(s string) (int, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || v > maxVersion {
		return 0, false
	}
	return int(v), true
}

// validName accepts transit key names and mount path segments: letters,
// digits, '-', '_' and '.', not "." or "..".
func validName(s string) error {
	if s == "" {
		return errors.New("name is empty")
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("name is %d bytes, at most %d allowed", len(s), maxNameLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("name %q is not allowed", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("name %q has characters other than letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// validMount accepts mount paths of one or more valid names joined by '/'.
func validMount(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("mount is %d bytes, at most %d allowed", len(s), maxNameLen)
	}
	for _, seg := range strings.Split(s, "/") {
		if err := validName(seg); err != nil {
			return fmt.Errorf("mount %q: %v", s, err)
		}
	}
	return nil
}

// ciphertextVersion returns N from a transit ciphertext "vault:vN:<base64>"
// and checks that the rest is plain standard base64 of a sane length.
func ciphertextVersion(c []byte) (int, bool) {
	if len(c) > maxCiphertext {
		return 0, false
	}
	s, ok := strings.CutPrefix(string(c), ciphertextStart)
	if !ok {
		return 0, false
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return 0, false
	}
	v, ok := parseVersion(s[:i])
	if !ok {
		return 0, false
	}
	b64 := s[i+1:]
	if b64 == "" || len(b64)%4 != 0 {
		return 0, false
	}
	for _, r := range []byte(b64) {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=') {
			return 0, false
		}
	}
	return v, true
}
