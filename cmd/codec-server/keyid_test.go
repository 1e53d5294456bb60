package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestKeysCommandsShareOneKeyIDForm: the ID `keys add` prints is the one
// `keys list` shows and `keys promote` and `keys retire` accept; the bare
// ID in the file is accepted too.
func TestKeysCommandsShareOneKeyIDForm(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.json")
	out, errOut, code := keysCmd(t, "", "new", "--file", file)
	if code != 0 {
		t.Fatalf("keys new: %d %s", code, errOut)
	}
	idRE := regexp.MustCompile(`local/\d{4}-\d{2}-\d{2}-[0-9a-f]{6}`)
	first := idRE.FindString(out)
	if first == "" {
		t.Fatalf("keys new printed no local/ key ID: %q", out)
	}
	out, errOut, code = keysCmd(t, "", "add", "--file", file)
	added := idRE.FindString(out)
	if code != 0 || added == "" || strings.Contains(out, " "+strings.TrimPrefix(added, "local/")+" ") {
		t.Fatalf("keys add: exit %d, %q %s; want every ID printed as local/...", code, out, errOut)
	}
	list, _, _ := keysCmd(t, "", "list", "--file", file)
	if !strings.Contains(list, added) || !strings.Contains(list, first) {
		t.Fatalf("keys list does not show %s and %s as printed:\n%s", first, added, list)
	}
	if out, errOut, code = keysCmd(t, "", "promote", added, "--file", file); code != 0 || !strings.Contains(out, added) {
		t.Fatalf("keys promote %s: exit %d, %q %s", added, code, out, errOut)
	}
	// The bare form works as well.
	if out, errOut, code = keysCmd(t, "", "retire", strings.TrimPrefix(first, "local/"), "--force", "--file", file); code != 0 || !strings.Contains(out, first) {
		t.Fatalf("keys retire (bare ID): exit %d, %q %s", code, out, errOut)
	}
}

// TestKeysRetireSaysWhatCachesDo: retiring a key does not stop running
// processes at once: they reload the file, and their decode caches keep
// data keys already unwrapped for up to 15 minutes. The message says so
// instead of claiming payloads no longer decrypt.
func TestKeysRetireSaysWhatCachesDo(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.json")
	if _, errOut, code := keysCmd(t, "", "new", "--file", file); code != 0 {
		t.Fatal(errOut)
	}
	out, _, _ := keysCmd(t, "", "rotate", "--file", file)
	_ = out
	list, _, _ := keysCmd(t, "", "list", "--file", file)
	var old string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, "decrypt only") {
			old = strings.Fields(line)[0]
		}
	}
	if old == "" {
		t.Fatalf("no decrypt-only key listed:\n%s", list)
	}
	out, errOut, code := keysCmd(t, "", "retire", old, "--force", "--file", file)
	if code != 0 {
		t.Fatalf("keys retire --force: %d %s", code, errOut)
	}
	if strings.Contains(out, "no longer decrypt") || !strings.Contains(out, "15m0s") || !strings.Contains(out, "reload") {
		t.Errorf("retire message %q, want one that names the reload and the 15m decode cache", out)
	}
}

// TestKeysAddLegacyCapsWhatItReads: --key-file /dev/zero fails at once
// instead of reading without end.
func TestKeysAddLegacyCapsWhatItReads(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.json")
	if _, errOut, code := keysCmd(t, "", "new", "--file", file); code != 0 {
		t.Fatal(errOut)
	}
	done := make(chan struct{})
	var errOut string
	var code int
	go func() {
		defer close(done)
		_, errOut, code = keysCmd(t, "", "add-legacy", "--id", "x", "--key-file", "/dev/zero", "--file", file)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("keys add-legacy --key-file /dev/zero still reading after 30s")
	}
	if code != 1 || !strings.Contains(errOut, "larger than") {
		t.Errorf("exit %d, stderr %q; want 1 saying the input is too large", code, errOut)
	}
}
