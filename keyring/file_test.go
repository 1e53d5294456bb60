package keyring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

var (
	testKey  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	testKey2 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func keyFile(active string, keys ...string) string {
	var parts []string
	for i := 0; i+1 < len(keys); i += 2 {
		parts = append(parts, fmt.Sprintf(`{"id":%q,"created":"2026-11-01T00:00:00Z","key":%q}`, keys[i], keys[i+1]))
	}
	return fmt.Sprintf(`{"version":1,"active":%q,"keys":[%s]}`, active, strings.Join(parts, ","))
}

func TestOpenFileRefusesBadFiles(t *testing.T) {
	t.Parallel()
	short := base64.StdEncoding.EncodeToString([]byte("too short"))
	tests := []struct {
		name, content, want string
	}{
		{"malformed JSON", `{"version":1,`, "malformed JSON"},
		{"not JSON at all", `key=` + testKey, "malformed JSON"},
		{"unknown field", `{"version":1,"active":"a","keys":[],"extra":1}`, `unknown field "extra"`},
		{"wrong version", `{"version":3,"active":"a","keys":[]}`, "unsupported version 3"},
		{"no keys", `{"version":1,"active":"a","keys":[]}`, "no keys"},
		{"a short key", keyFile("a", "a", short), `key "a": key is 9 bytes, want 32`},
		{"a key that is not base64", keyFile("a", "a", "!!!"), "not valid base64"},
		{"a duplicate id", keyFile("a", "a", testKey, "a", testKey2), `duplicate id "a"`},
		{"the active id missing", keyFile("b", "a", testKey), `active key id "b" is not among the keys`},
		{"no active id", keyFile("", "a", testKey), "no active key id"},
		{"a key pasted as the active id", keyFile(testKey2, "a", testKey), "active key id: id has characters other than"},
		{"an id with a slash", keyFile("a/b", "a/b", testKey), "has characters other than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, t.TempDir(), "keys.json", tt.content)
			_, err := keyring.OpenFile(path, keyring.FileOptions{})
			if err == nil {
				t.Fatal("OpenFile succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, secret := range []string{testKey, testKey2, "too short"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks key material", err)
				}
			}
		})
	}
}

func TestOpenFileWarnsAboutLoosePermissions(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "keys.json", keyFile("a", "a", testKey))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if _, err := keyring.OpenFile(path, keyring.FileOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "readable by group or others") {
		t.Fatalf("no warning in %q", logs.String())
	}
	if strings.Contains(logs.String(), testKey) {
		t.Fatal("log leaks key material")
	}
}

func TestOpenFileAcceptsItsOwnGroup(t *testing.T) {
	t.Parallel()
	// As Kubernetes mounts a secret: readable by the pod's own group.
	path := writeFile(t, t.TempDir(), "keys.json", keyFile("a", "a", testKey))
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if _, err := keyring.OpenFile(path, keyring.FileOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Fatalf("unexpected warning: %s", logs.String())
	}
}

func TestReloadKeepsOldKeysOnABadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "keys.json", keyFile("a", "a", testKey))
	kr, err := keyring.OpenFile(path, keyring.FileOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "keys.json", `{"version":1,"active":"a","keys":[`)
	if _, err := kr.Reload(); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Fatalf("Reload of a broken file: %v", err)
	}
	if got := kr.ActiveKeyID(); got != "local/a" {
		t.Fatalf("active key after a bad reload = %q, want local/a", got)
	}
	if _, err := kr.NewDataKey(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
}

// TestReloadFollowsSymlinkSwap swaps the key file the way Kubernetes
// updates a mounted secret: a symlink is repointed to a new directory.
func TestReloadFollowsSymlinkSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, v := range []struct{ dir, content string }{
		{"v1", keyFile("a", "a", testKey)},
		{"v2", keyFile("b", "a", testKey, "b", testKey2)},
	} {
		if err := os.Mkdir(filepath.Join(dir, v.dir), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, v.dir), "keys.json", v.content)
	}
	data := filepath.Join(dir, "..data")
	if err := os.Symlink("v1", data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keys.json")
	if err := os.Symlink(filepath.Join("..data", "keys.json"), path); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dkA, err := kr.NewDataKey(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, data); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go kr.Watch(ctx, 10*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for kr.ActiveKeyID() != "local/b" {
		if time.Now().After(deadline) {
			t.Fatal("the swapped key file was not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	keys, err := kr.UnwrapDataKeys(context.Background(), "", []keyring.WrappedKey{{KeyID: dkA.KeyID, Wrapped: dkA.Wrapped}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys[0].UnsafeBytes(), dkA.Key.UnsafeBytes()) {
		t.Fatal("unwrapped a different key")
	}
}

func TestUnwrapErrors(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "keys.json", keyFile("a", "a", testKey, "b", testKey2))
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := kr.NewDataKey(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(dk.Wrapped)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		key  keyring.WrappedKey
		want error
	}{
		{"an unknown key id", keyring.WrappedKey{KeyID: "local/zzz", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		{"a key wrapped under another key id", keyring.WrappedKey{KeyID: "local/b", Wrapped: dk.Wrapped}, keyring.ErrUnwrap},
		{"a flipped bit", keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: flipped}, keyring.ErrUnwrap},
		{"a truncated key", keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: dk.Wrapped[:30]}, keyring.ErrUnwrap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kr.UnwrapDataKeys(context.Background(), "", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}, tt.key})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCreateRotateList(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "keys.json")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	first, err := keyring.CreateFile(path, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.CreateFile(path, t0); err == nil {
		t.Fatal("CreateFile overwrote an existing file")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("mode = %v, want 0600", perm)
	}
	second, err := keyring.RotateFile(path, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	infos, err := keyring.ListFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].ID != first.ID || infos[1].ID != second.ID || infos[0].Active || !infos[1].Active {
		t.Fatalf("ListFile = %+v", infos)
	}
	if !strings.HasPrefix(second.ID, "2026-11-02-") {
		t.Errorf("key id %q does not start with its creation date", second.ID)
	}
}

func TestSecretIsRedacted(t *testing.T) {
	t.Parallel()
	s := keyring.NewSecret([]byte("hunter2hunter2"))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), logs.String(), fmt.Sprintf("%v", keyring.DataKey{Key: s})} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret leaked: %s", out)
		}
	}
}
