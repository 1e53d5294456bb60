package keyring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

func TestSecretPrintsNoBytesWithAnyVerb(t *testing.T) {
	t.Parallel()
	raw := []byte{0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48}
	s := keyring.NewSecret(raw)
	dk := keyring.DataKey{KeyID: "k", Key: s}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%o", "%O", "%x", "%X", "%b", "%c", "%U", "%e", "%08d", "% x"} {
		for _, v := range []any{s, &s, dk, []keyring.Secret{s}} {
			out := fmt.Sprintf(verb, v)
			for _, leak := range []string{"ABCDEFGH", "65", "41424344", "101", "0x41", "1000001", "[65 66"} {
				if strings.Contains(out, leak) {
					t.Errorf("Sprintf(%q, %T) = %q prints the bytes", verb, v, out)
				}
			}
		}
	}
}

func TestLegacyKeyReturnsACopy(t *testing.T) {
	t.Parallel()
	legacy := base64Key(5)
	path := writeFile(t, t.TempDir(), "keys.json", fmt.Sprintf(`{"version":1,"active":"a","keys":[
		{"id":"a","created":"2026-11-01T00:00:00Z","key":%q},
		{"id":"","created":"2026-11-01T00:00:00Z","key":%q,"legacy":true}]}`, testKey, legacy))
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := f.LegacyKey(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	b := s1.UnsafeBytes()
	want := bytes.Clone(b)
	for i := range b {
		b[i] = 0
	}
	s2, err := f.LegacyKey(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s2.UnsafeBytes(), want) {
		t.Fatal("changing the returned bytes changed the keyring's key")
	}
}

func TestKeyFileRefusesDuplicateAndCaseVariantFields(t *testing.T) {
	t.Parallel()
	k := `{"id":"a","created":"2026-11-01T00:00:00Z","key":"` + testKey + `"}`
	tests := []struct{ name, content, want string }{
		{"two actives", `{"version":1,"active":"a","active":"b","keys":[` + k + `]}`, `duplicate field "active"`},
		{"two versions", `{"version":1,"version":1,"active":"a","keys":[` + k + `]}`, `duplicate field "version"`},
		{"key and KEY", `{"version":1,"active":"a","keys":[{"id":"a","created":"2026-11-01T00:00:00Z","key":"` + testKey + `","KEY":"` + testKey2 + `"}]}`, `field "KEY" must be spelled "key"`},
		{"an upper-case field alone", `{"version":1,"Active":"a","keys":[` + k + `]}`, `field "Active" must be spelled "active"`},
		{"two ids in a key", `{"version":1,"active":"a","keys":[{"id":"b","id":"a","created":"2026-11-01T00:00:00Z","key":"` + testKey + `"}]}`, `duplicate field "id"`},
		{"two keys lists", `{"version":1,"active":"a","keys":[` + k + `],"keys":[]}`, `duplicate field "keys"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, t.TempDir(), "keys.json", tt.content)
			_, err := keyring.OpenFile(path, keyring.FileOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenFile: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), testKey2) {
				t.Fatalf("error %q leaks key material", err)
			}
		})
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStagedRotation walks add, promote and retire on a real file, with a
// keyring that reloads it as a server does.
func TestStagedRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	first, err := keyring.CreateFile(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldDK, err := kr.NewDataKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	// add: decrypt-only, the active key stays.
	added, err := keyring.AddKey(path, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := kr.ActiveKeyID(); got != keyring.FileKeyIDPrefix+first.ID {
		t.Fatalf("active after add = %q, want the first key", got)
	}

	// Retiring the active key is refused, even forced.
	window := time.Hour + 10*time.Second
	for _, force := range []bool{false, true} {
		if _, err := keyring.RetireKey(path, first.ID, t0.Add(2*time.Hour), keyring.RetireOptions{Window: window, Force: force}); !errors.Is(err, keyring.ErrKeyInUse) {
			t.Fatalf("retire the active key (force=%v): %v, want ErrKeyInUse", force, err)
		}
	}

	// promote
	tp := t0.Add(2 * time.Hour)
	if _, err := keyring.PromoteKey(path, added.ID, tp); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Reload(); err != nil {
		t.Fatal(err)
	}
	newDK, err := kr.NewDataKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if newDK.KeyID != keyring.FileKeyIDPrefix+added.ID {
		t.Fatalf("new data key under %q, want the promoted key", newDK.KeyID)
	}

	// The old key was active until tp: retiring it within the window is
	// refused, forced or later it is allowed.
	if _, err := keyring.RetireKey(path, first.ID, tp.Add(30*time.Minute), keyring.RetireOptions{Window: window}); !errors.Is(err, keyring.ErrKeyInUse) {
		t.Fatalf("retire within the window: %v, want ErrKeyInUse", err)
	}
	if _, err := keyring.RetireKey(path, first.ID, tp.Add(window+time.Second), keyring.RetireOptions{Window: window}); err != nil {
		t.Fatalf("retire after the window: %v", err)
	}
	if _, err := kr.Reload(); err != nil {
		t.Fatal(err)
	}
	_, err = kr.UnwrapDataKeys(ctx, "", []keyring.WrappedKey{{KeyID: newDK.KeyID, Wrapped: newDK.Wrapped}, {KeyID: oldDK.KeyID, Wrapped: oldDK.Wrapped}})
	if !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("unwrap under a retired key: %v, want ErrUnknownKey naming it retired", err)
	}
	if i, ok := keyring.FailedKey(err); !ok || i != 1 {
		t.Fatalf("FailedKey = %d, %v, want 1", i, ok)
	}
	if _, err := keyring.PromoteKey(path, first.ID, tp.Add(3*time.Hour)); err == nil {
		t.Fatal("promoting a retired key succeeded")
	}
	infos, err := keyring.ListFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Retired.IsZero() || !infos[1].Active || infos[1].Promoted != tp {
		t.Fatalf("list = %+v", infos)
	}
	if m := readJSON(t, path); m["version"] != float64(2) {
		t.Fatalf("version = %v, want 2", m["version"])
	}
}

func TestRetireForcedWithinTheWindow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	now := time.Now()
	first, err := keyring.CreateFile(path, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.RotateFile(path, now); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.RetireKey(path, first.ID, now, keyring.RetireOptions{Window: time.Hour}); !errors.Is(err, keyring.ErrKeyInUse) {
		t.Fatalf("retire just after rotate: %v, want ErrKeyInUse", err)
	}
	if _, err := keyring.RetireKey(path, first.ID, now, keyring.RetireOptions{Window: time.Hour, Force: true}); err != nil {
		t.Fatalf("forced retire: %v", err)
	}
}

// TestVersion1FileUpgrades checks that a version 1 file keeps working and
// that a key that was active in it counts as used when it is retired.
func TestVersion1FileUpgrades(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "keys.json", `{"version":1,"active":"b","keys":[
		{"id":"a","created":"2026-11-01T00:00:00Z","key":"`+testKey+`"},
		{"id":"b","created":"2026-11-02T00:00:00Z","key":"`+testKey2+`"}]}`)
	added, err := keyring.AddKey(path, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.PromoteKey(path, added.ID, time.Date(2026, 11, 3, 1, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	// b was active until 01:00 on the 3rd.
	if _, err := keyring.RetireKey(path, "b", time.Date(2026, 11, 3, 1, 30, 0, 0, time.UTC), keyring.RetireOptions{Window: time.Hour}); !errors.Is(err, keyring.ErrKeyInUse) {
		t.Fatalf("retire b within the window: %v, want ErrKeyInUse", err)
	}
	// a was active until b was created.
	if _, err := keyring.RetireKey(path, "a", time.Date(2026, 11, 3, 1, 30, 0, 0, time.UTC), keyring.RetireOptions{Window: time.Hour}); err != nil {
		t.Fatalf("retire a: %v", err)
	}
}

func TestAddLegacyKeyWithEmptyID(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	static := []byte("test-key-test-key-test-key-test!")
	if _, err := keyring.AddLegacyKey(path, "", static, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.AddLegacyKey(path, "", static, time.Now()); err == nil {
		t.Fatal("adding the same legacy id twice succeeded")
	}
	if _, err := keyring.AddLegacyKey(path, "test", static[:31], time.Now()); err == nil {
		t.Fatal("adding a 31-byte legacy key succeeded")
	}
	f, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.LegacyKey(context.Background(), "")
	if err != nil || !bytes.Equal(s.UnsafeBytes(), static) {
		t.Fatalf("LegacyKey(\"\"): %v", err)
	}
	// A legacy key never sealed: it can be retired at once.
	if _, err := keyring.RetireKey(path, "", time.Now(), keyring.RetireOptions{Window: time.Hour}); err != nil {
		t.Fatalf("retire the legacy key: %v", err)
	}
	if _, err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.LegacyKey(context.Background(), ""); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("retired legacy key: %v, want ErrUnknownKey", err)
	}
}

func TestKeyCommandsKeepOwnerGroupAndMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		// As root, hand the file to another user and group: the commands
		// must keep them.
		uid, gid = 65534, 65534
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	steps := []func() error{
		func() error { _, err := keyring.RotateFile(path, time.Now()); return err },
		func() error { _, err := keyring.AddKey(path, time.Now()); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Fatalf("step %d: mode %v owner %d:%d, want 0640 %d:%d", i, fi.Mode().Perm(), st.Uid, st.Gid, uid, gid)
		}
	}
}

func TestKeyFileWritableByOthersIsRefused(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o620, 0o660, 0o602, 0o666} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "keys.json")
			if _, err := keyring.CreateFile(path, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			if _, err := keyring.RotateFile(path, time.Now()); err == nil || !strings.Contains(err.Error(), "write") {
				t.Fatalf("rotate: %v, want a refusal", err)
			}
			if _, err := keyring.OpenFile(path, keyring.FileOptions{}); err == nil {
				t.Fatal("OpenFile accepted it")
			}
		})
	}
}

func TestFailingReloadIsVisible(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "keys.json", keyFile("a", "a", testKey))
	var seen []error
	f, err := keyring.OpenFile(path, keyring.FileOptions{OnReload: func(err error) { seen = append(seen, err) }, ReloadFailuresUnready: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,`), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := f.Reload(); err == nil {
			t.Fatal("reload of a broken file succeeded")
		}
		err := f.Check(context.Background())
		if i < 3 && err != nil {
			t.Fatalf("Check after %d failures: %v", i, err)
		}
		if i == 3 && (err == nil || !strings.Contains(err.Error(), "3 reloads in a row failed")) {
			t.Fatalf("Check after 3 failures: %v", err)
		}
	}
	if len(seen) != 3 || seen[2] == nil {
		t.Fatalf("OnReload saw %v", seen)
	}
	writeFile(t, filepath.Dir(path), "keys.json", keyFile("a", "a", testKey))
	if _, err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.Check(context.Background()); err != nil || f.ReloadFailures() != 0 {
		t.Fatalf("after a good reload: Check %v, failures %d", err, f.ReloadFailures())
	}
}

func base64Key(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
