package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/envelopecodec/envelope/internal/ownerfile"
)

// ErrKeyInUse means a key file command was refused because the key may
// still be sealing new payloads somewhere (see [RetireKey]).
var ErrKeyInUse = errors.New("keyring: key may still be in use")

// CreateFile writes a new key file at path with one fresh active key. It
// refuses to overwrite an existing file. The file is created with mode 0600.
func CreateFile(path string, now time.Time) (KeyInfo, error) {
	if _, err := os.Lstat(path); err == nil {
		return KeyInfo{}, fmt.Errorf("keyring: key file %s already exists", path)
	}
	f := &fileJSON{Version: fileFormatVersion}
	info, err := addKey(f, now)
	if err != nil {
		return KeyInfo{}, err
	}
	promote(f, info.ID, now)
	info.Active, info.Promoted = true, now.UTC().Truncate(time.Second)
	return info, writeFileAtomic(path, f, nil)
}

// RotateFile adds a fresh key to the key file at path and makes it the
// active key in one step. Old keys stay, so payloads sealed under them still
// decode. Servers that have not reloaded the file yet cannot open payloads
// sealed under the new key until they do: where several processes read
// copies of the file, use [AddKey] and [PromoteKey] instead.
func RotateFile(path string, now time.Time) (KeyInfo, error) {
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		var err error
		if info, err = addKey(f, now); err != nil {
			return err
		}
		promote(f, info.ID, now)
		info.Active, info.Promoted = true, now.UTC().Truncate(time.Second)
		return nil
	})
	return info, err
}

// AddKey adds a fresh key to the key file at path without making it active:
// it only decrypts until [PromoteKey] makes it active. Distribute the file
// to every server and worker before promoting the key.
func AddKey(path string, now time.Time) (KeyInfo, error) {
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		var err error
		info, err = addKey(f, now)
		return err
	})
	return info, err
}

// PromoteKey makes the key id (as in the file, without FileKeyIDPrefix) of
// the key file at path the active key. It refuses legacy and retired keys.
func PromoteKey(path, id string, now time.Time) (KeyInfo, error) {
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		k := findKey(f, id)
		switch {
		case k == nil:
			return fmt.Errorf("no key %q", id)
		case k.Legacy:
			return fmt.Errorf("key %q is a legacy key, which only decodes", id)
		case k.Retired != nil:
			return fmt.Errorf("key %q is retired", id)
		case f.Active == id:
			return fmt.Errorf("key %q is already active", id)
		}
		promote(f, id, now)
		info = KeyInfo{ID: id, Created: k.Created, Active: true, Promoted: *k.Promoted}
		return nil
	})
	return info, err
}

// RetireOptions configures [RetireKey].
type RetireOptions struct {
	// Window is how long after a key stopped being active it may still
	// seal new payloads: the codec's Options.DataKeyMaxAge plus the key
	// file reload interval of every process that reads the file.
	Window time.Duration
	// Force retires a key that stopped being active less than Window ago.
	// Only use this if every process that reads the file has reloaded it.
	Force bool
}

// RetireKey marks the key id of the key file at path retired: it no longer
// unwraps data keys, so payloads sealed under it stop decoding (their
// histories can no longer be read) until the mark is removed. It refuses
// the active key, and with an error wrapping [ErrKeyInUse] a key that was
// active less than opts.Window ago, unless opts.Force. A key that never was
// active (added, or legacy) can be retired at once. The key material stays
// in the file.
func RetireKey(path, id string, now time.Time, opts RetireOptions) (KeyInfo, error) {
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		k := findKey(f, id)
		switch {
		case k == nil:
			return fmt.Errorf("no key %q", id)
		case k.Retired != nil:
			return fmt.Errorf("key %q is already retired", id)
		case !k.Legacy && f.Active == id:
			return fmt.Errorf("key %q is the active key; promote another key first: %w", id, ErrKeyInUse)
		}
		if end, ok := activeUntil(f, k, now); ok && !opts.Force {
			if left := end.Add(opts.Window).Sub(now); left > 0 {
				return fmt.Errorf("key %q was active until %s and may still seal payloads for %s (data key max age + reload interval); retry later or use --force: %w",
					id, end.UTC().Format(time.RFC3339), left.Round(time.Second), ErrKeyInUse)
			}
		}
		t := now.UTC().Truncate(time.Second)
		k.Retired = &t
		info = KeyInfo{ID: id, Created: k.Created, Legacy: k.Legacy, Retired: t}
		if k.Promoted != nil {
			info.Promoted = *k.Promoted
		}
		return nil
	})
	return info, err
}

// activeUntil returns when key k stopped being active: when the first key
// promoted after k's last promotion was promoted. ok is false for a key
// that never was active.
func activeUntil(f *fileJSON, k *fileKeyJSON, now time.Time) (end time.Time, ok bool) {
	if k.Legacy || k.Promoted == nil {
		return time.Time{}, false
	}
	for _, o := range f.Keys {
		if o.Promoted != nil && o.Promoted.After(*k.Promoted) && (end.IsZero() || o.Promoted.Before(end)) {
			end = *o.Promoted
		}
	}
	if end.IsZero() {
		// No later promotion recorded (clock skew): count it active until now.
		end = now
	}
	return end, true
}

// AddLegacyKey adds a static key of the Temporal samples' encryption codec
// under the samples' key ID id (the empty ID, the samples' default,
// included) to the key file at path. It only decodes payloads the samples
// sealed under that ID.
func AddLegacyKey(path, id string, key []byte, now time.Time) (KeyInfo, error) {
	if len(key) != DataKeySize {
		return KeyInfo{}, fmt.Errorf("keyring: legacy key is %d bytes, want %d", len(key), DataKeySize)
	}
	if err := validLegacyKeyID(id); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: legacy key id: %w", err)
	}
	var info KeyInfo
	err := updateFile(path, func(f *fileJSON) error {
		if findKey(f, id) != nil {
			return fmt.Errorf("key id %q is already in the file", id)
		}
		t := now.UTC().Truncate(time.Second)
		f.Keys = append(f.Keys, fileKeyJSON{ID: id, Created: t, Key: base64.StdEncoding.EncodeToString(key), Legacy: true})
		info = KeyInfo{ID: id, Created: t, Legacy: true}
		return nil
	})
	return info, err
}

func findKey(f *fileJSON, id string) *fileKeyJSON {
	for i := range f.Keys {
		if f.Keys[i].ID == id {
			return &f.Keys[i]
		}
	}
	return nil
}

func promote(f *fileJSON, id string, now time.Time) {
	t := now.UTC().Truncate(time.Second)
	findKey(f, id).Promoted = &t
	f.Active = id
}

// updateFile reads and validates the key file at path, upgrades a version
// 1 file to version 2, applies fn, validates the result and writes it back
// atomically with the file's owner, group and mode. It refuses a file that
// anyone but its owner can write.
func updateFile(path string, fn func(*fileJSON) error) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	unlock, err := ownerfile.Lock(real)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: lock: %w", path, err)
	}
	defer unlock()
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	if err := ownerfile.CheckShared(real, fi); err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	data, _, err := ownerfile.Read(real, maxFileSize+1, ownerfile.CheckShared)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	defer func() { clear(data) }()
	if _, err := parseKeyFile(data); err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	f, err := decodeKeyFile(data)
	if err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	if f.Version == 1 {
		// Version 1 made every key active when it was created.
		for i := range f.Keys {
			if k := &f.Keys[i]; !k.Legacy {
				t := k.Created
				k.Promoted = &t
			}
		}
		f.Version = fileFormatVersion
	}
	if err := fn(f); err != nil {
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	return writeFileAtomic(real, f, fi)
}

func addKey(f *fileJSON, now time.Time) (KeyInfo, error) {
	key := make([]byte, DataKeySize)
	suffix := make([]byte, 3)
	if _, err := rand.Read(key); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: generate key: %w", err)
	}
	if _, err := rand.Read(suffix); err != nil {
		return KeyInfo{}, fmt.Errorf("keyring: generate key id: %w", err)
	}
	now = now.UTC().Truncate(time.Second)
	id := now.Format("2006-01-02") + "-" + hex.EncodeToString(suffix)
	if findKey(f, id) != nil {
		return KeyInfo{}, errors.New("keyring: generated key id is taken; try again")
	}
	f.Keys = append(f.Keys, fileKeyJSON{ID: id, Created: now, Key: base64.StdEncoding.EncodeToString(key)})
	return KeyInfo{ID: id, Created: now}, nil
}

// writeFileAtomic writes f to a temporary file in the same directory and
// moves it into place (internal/ownerfile). The new file gets the mode,
// owner and group of old (the file it replaces), or mode 0600 when old is
// nil, then refusing to replace a file that exists; if the owner or group
// cannot be kept, nothing is written. The temporary file, which holds key
// material, is removed on every path.
func writeFileAtomic(path string, f *fileJSON, old os.FileInfo) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("keyring: encode key file: %w", err)
	}
	defer func() { clear(data) }()
	data = append(data, '\n')
	if _, err := parseKeyFile(data); err != nil {
		return fmt.Errorf("keyring: refusing to write an invalid key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := ownerfile.Write(path, data, ownerfile.WriteOptions{Replace: old, TempPattern: ".keyring-*.tmp"}); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keyring: key file %s already exists", path)
		}
		return fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	return nil
}

// ListFile lists the keys of the key file at path, oldest first, without
// key material.
func ListFile(path string) ([]KeyInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	ks, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("keyring: key file %s: %w", path, err)
	}
	infos := append([]KeyInfo(nil), ks.infos...)
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].Created.Before(infos[j].Created) })
	return infos, nil
}
