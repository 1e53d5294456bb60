package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// FileKeyIDPrefix starts the key ID of every key from a key file, so IDs
// from different keyrings never collide.
const FileKeyIDPrefix = "local/"

const (
	// fileFormatVersion is the version this package writes. Version 1
	// files (no promoted or retired fields) are still read; commands that
	// change a file write version 2.
	fileFormatVersion = 2
	wrapNonceSize     = 12
	// wrappedSize is nonce ‖ encrypted data key ‖ tag.
	wrappedSize = wrapNonceSize + DataKeySize + 16
	maxFileSize = 1 << 20
	maxKeyIDLen = 128
)

// fileJSON is the on-disk form of a key file.
type fileJSON struct {
	Version int           `json:"version"`
	Active  string        `json:"active"`
	Keys    []fileKeyJSON `json:"keys"`
}

type fileKeyJSON struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Key     string    `json:"key"` // base64 (standard encoding) of 32 bytes
	// Legacy marks a static key of the Temporal samples' encryption codec:
	// it only decodes payloads sealed directly under it, under its ID as
	// written by the samples (no FileKeyIDPrefix).
	Legacy bool `json:"legacy,omitempty"`
	// Promoted is when the key last became the active key (version 2);
	// absent for a key that never was.
	Promoted *time.Time `json:"promoted,omitempty"`
	// Retired is when the key was retired (version 2): it no longer
	// unwraps data keys or decodes payloads. Its material stays in the
	// file until an operator deletes the entry.
	Retired *time.Time `json:"retired,omitempty"`
}

// canonicalFieldNames are the field names of a key file, at any level.
var canonicalFieldNames = []string{"version", "active", "keys", "id", "created", "key", "legacy", "promoted", "retired"}

// KeyInfo describes a key in a key file without its key material.
type KeyInfo struct {
	ID      string // the ID inside the file, without FileKeyIDPrefix
	Created time.Time
	Active  bool
	Legacy  bool      // a samples-codec static key, for decoding only
	Retired time.Time // when the key was retired; zero if it was not
	// Promoted is when the key last became active; zero if never. Keys of
	// version 1 files count as promoted when they were created.
	Promoted time.Time
}

// FullID returns the key ID payloads carry: FileKeyIDPrefix and the ID, or
// the ID alone for a legacy key.
func (k KeyInfo) FullID() string {
	if k.Legacy {
		return k.ID
	}
	return FileKeyIDPrefix + k.ID
}

// keySet is one successfully parsed key file.
type keySet struct {
	active  string // full key ID, with prefix
	keys    map[string]cipher.AEAD
	legacy  map[string][]byte // static sample-codec keys by their plain ID
	retired map[string]bool   // full IDs (legacy ones without prefix) of retired keys
	infos   []KeyInfo
	digest  [sha256.Size]byte // of the file's bytes, to notice changes
	index   fileIndex         // blind-index keys (indexkeys.go)
}

// parseKeyFile parses and validates a key file. Errors never contain key
// material.
func parseKeyFile(data []byte) (*keySet, error) {
	f, err := decodeKeyFile(data)
	if err != nil {
		return nil, err
	}
	ks := &keySet{keys: make(map[string]cipher.AEAD, len(f.Keys)), legacy: make(map[string][]byte), retired: make(map[string]bool)}
	seen := make(map[string]bool, len(f.Keys))
	for i, k := range f.Keys {
		if k.Legacy {
			if err := validLegacyKeyID(k.ID); err != nil {
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
		} else if err := validKeyID(k.ID); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("key %d: duplicate id %q", i, k.ID)
		}
		seen[k.ID] = true
		if f.Version < 2 && (k.Promoted != nil || k.Retired != nil) {
			return nil, fmt.Errorf("key %q: \"promoted\" and \"retired\" need version 2", k.ID)
		}
		raw, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			return nil, fmt.Errorf("key %q: key is not valid base64", k.ID)
		}
		if len(raw) != DataKeySize {
			return nil, fmt.Errorf("key %q: key is %d bytes, want %d", k.ID, len(raw), DataKeySize)
		}
		info := KeyInfo{ID: k.ID, Created: k.Created, Active: !k.Legacy && k.ID == f.Active, Legacy: k.Legacy}
		switch {
		case k.Promoted != nil:
			info.Promoted = *k.Promoted
		case f.Version < 2 && !k.Legacy:
			info.Promoted = k.Created // version 1 made every new key active
		}
		if k.Retired != nil {
			info.Retired = *k.Retired
			ks.retired[info.FullID()] = true
		}
		ks.infos = append(ks.infos, info)
		switch {
		case k.Retired != nil:
		case k.Legacy:
			ks.legacy[k.ID] = raw
		default:
			aead, err := newGCM(raw)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k.ID, err)
			}
			ks.keys[FileKeyIDPrefix+k.ID] = aead
			if err := ks.addIndexKey(FileKeyIDPrefix+k.ID, raw); err != nil {
				return nil, err
			}
		}
	}
	if f.Active == "" {
		return nil, errors.New("no active key id")
	}
	if err := validKeyID(f.Active); err != nil {
		return nil, fmt.Errorf("active key id: %w", err)
	}
	if _, ok := ks.keys[FileKeyIDPrefix+f.Active]; !ok {
		if _, ok := ks.legacy[f.Active]; ok {
			return nil, fmt.Errorf("active key id %q is a legacy key, which only decodes", f.Active)
		}
		if ks.retired[FileKeyIDPrefix+f.Active] {
			return nil, fmt.Errorf("active key id %q is retired", f.Active)
		}
		return nil, fmt.Errorf("active key id %q is not among the keys", f.Active)
	}
	ks.active = FileKeyIDPrefix + f.Active
	ks.digest = sha256.Sum256(data)
	return ks, nil
}

// decodeKeyFile decodes a key file strictly: bounded size, no unknown,
// duplicate or case-variant field names at any level (Go's decoder would
// take the last of two and ignore case; other readers take the first),
// strict RFC 3339 times, nothing but white space after the object, a known
// version and at least one key. The TypeScript parser (typescript/src/keyfile.ts)
// follows the same rules in the same order; keyring/testdata/keyfile-cases.json
// holds the cases both check.
func decodeKeyFile(data []byte) (*fileJSON, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("file is %d bytes, more than the %d allowed", len(data), maxFileSize)
	}
	if err := checkFieldNames(data); err != nil {
		return nil, err
	}
	if err := checkTimes(data); err != nil {
		return nil, err
	}
	var f fileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("malformed JSON: %s", jsonErrorReason(err))
	}
	if f.Version != 1 && f.Version != fileFormatVersion {
		return nil, fmt.Errorf("unsupported version %d, want 1 or %d", f.Version, fileFormatVersion)
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("no keys")
	}
	return &f, nil
}

// checkFieldNames walks the JSON document and refuses an object with two
// fields whose names are equal ignoring case, a field name that differs
// only in case from a key file field ("KEY" for "key"), and anything but
// white space after the document (Decoder.More would let a stray ']' or
// '}' through). Names that are not a key file's are not quoted: they could
// be key material in the wrong place.
func checkFieldNames(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 16 {
			return errors.New("malformed JSON: nested too deeply")
		}
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("malformed JSON: %s", jsonErrorReason(err))
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '[':
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		case '{':
			names := make(map[string]bool)
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return fmt.Errorf("malformed JSON: %s", jsonErrorReason(err))
				}
				name, _ := tok.(string)
				folded := strings.ToLower(name)
				canonical := ""
				for _, c := range canonicalFieldNames {
					if strings.EqualFold(c, name) {
						canonical = c
					}
				}
				switch {
				case canonical != "" && name != canonical:
					return fmt.Errorf("field %q must be spelled %q", name, canonical)
				case names[folded] && canonical != "":
					return fmt.Errorf("duplicate field %q", canonical)
				case names[folded]:
					return errors.New("duplicate field name")
				}
				names[folded] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		if err != nil {
			return fmt.Errorf("malformed JSON: %s", jsonErrorReason(err))
		}
		return nil
	}
	if err := walk(0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed JSON: data after the top-level object")
	}
	return nil
}

// timeFieldNames are a key's fields that hold a time.
var timeFieldNames = []string{"created", "promoted", "retired"}

// checkTimes refuses a key's time that is not a strict RFC 3339 time, as
// JSON text: time.Time's own parser takes "T1:00:00Z" and "00:00:00,5Z" and
// no escapes, other readers differ. A null is an absent time. The shapes
// around the times are left to the strict decoder.
func checkTimes(data []byte) error {
	var loose struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	_ = json.Unmarshal(data, &loose)
	for i, k := range loose.Keys {
		for _, name := range timeFieldNames {
			raw, ok := k[name]
			if !ok || string(raw) == "null" || validRFC3339(raw) {
				continue
			}
			// Do not quote the value: it may be key material in the wrong field.
			return fmt.Errorf("key %d: %q is not an RFC 3339 time such as \"2026-11-23T10:00:00Z\"", i, name)
		}
	}
	return nil
}

// validRFC3339 reports whether raw is a JSON string, without escapes, of an
// RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS, at most 9 fraction digits, then Z
// or ±HH:MM; an existing day, hours below 24, no leap second.
func validRFC3339(raw []byte) bool {
	s := string(raw)
	if len(s) < len(`"2006-01-02T15:04:05Z"`) || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	s = s[1 : len(s)-1]
	num := func(at, n int) (int, bool) {
		if at+n > len(s) {
			return 0, false
		}
		v := 0
		for _, c := range []byte(s[at : at+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return false
	}
	rest := s[19:]
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return false
		}
		rest = rest[n:]
	}
	if rest == "Z" {
		return true
	}
	if len(rest) != 6 || rest[0] != '+' && rest[0] != '-' || rest[3] != ':' {
		return false
	}
	s = rest
	oh, ok1 := num(1, 2)
	om, ok2 := num(4, 2)
	return ok1 && ok2 && oh <= 23 && om <= 59
}

// daysIn is the number of days of a month (1-12) in the proleptic Gregorian calendar.
func daysIn(month, year int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// jsonErrorReason describes a JSON error without quoting input, which could
// be key material.
func jsonErrorReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		// Quote a short name (a typo); a long one may be a pasted key.
		if name := strings.TrimPrefix(err.Error(), "json: unknown field "); len(name) > 22 {
			return fmt.Sprintf("unknown field (a %d-byte name, not quoted: it may be key material); fields are %s", len(name)-2, strings.Join(canonicalFieldNames, ", "))
		}
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "cannot parse"
	}
}

func validKeyID(id string) error {
	if id == "" {
		return errors.New("empty id")
	}
	if len(id) > maxKeyIDLen {
		return fmt.Errorf("id is %d bytes, at most %d allowed", len(id), maxKeyIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			// Do not quote the id: a bad id may be key material in the wrong field.
			return errors.New("id has characters other than letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

// validLegacyKeyID checks the ID of a samples-codec static key: the
// samples' own IDs, so the empty ID (their default) is allowed.
func validLegacyKeyID(id string) error {
	if id == "" {
		return nil
	}
	return validKeyID(id)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return cipher.NewGCM(block)
}

// wrapAAD binds a wrapped data key to the key ID that wrapped it.
func wrapAAD(keyID string) []byte { return []byte("envelope/kek-wrap/v1\x00" + keyID) }
