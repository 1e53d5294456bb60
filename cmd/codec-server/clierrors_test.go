package main

import (
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestCommandLineErrorsAreOneLine: what a CLI user gets wrong is said in
// one line on stderr, with the usual exit codes (2 usage, 1 failure).
func TestCommandLineErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	for _, tt := range []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     string
		notWant  []string
	}{
		{"keys list without --file says what is missing", nil, []string{"keys", "list"}, 2, "no key file: pass --file F or set CODEC_SERVER_KEYS_FILE", nil},
		{"keys rotate without --file says what is missing", nil, []string{"keys", "rotate"}, 2, "no key file", nil},
		{"keys list of a directory", nil, []string{"keys", "list", "--file", dir}, 1, "is a directory", []string{"readable by group"}},
		{"an empty --keys-file", nil, []string{"--keys-file", ""}, 2, "--keys-file is empty", nil},
		{"an empty CODEC_SERVER_KEYS_FILE", []string{"CODEC_SERVER_KEYS_FILE="}, nil, 2, "CODEC_SERVER_KEYS_FILE is set but empty", nil},
		{"a directory as key file, without a permissions warning first", nil, []string{"--keys-file", dir}, 1, "is a directory, want a key file", []string{"readable by group", "codec server stopped"}},
		{"a missing key file", nil, []string{"--keys-file", filepath.Join(dir, "nope.json")}, 1, "no such file (create one with: codec-server keys new", []string{"codec server stopped"}},
		{"keys shred without --subject says so in one line", nil, []string{"keys", "shred", "--namespace", "default", "--subject-store", "dir"}, 2, "--subject is required", nil},
		{"keys shred without --subject-store says so in one line", nil, []string{"keys", "shred", "--namespace", "default", "--subject", "alice"}, 2, "--subject-store is required", nil},
		{"keys shred without --namespace says so in one line", nil, []string{"keys", "shred", "--subject", "alice", "--subject-store", "dir"}, 2, "--namespace is required", nil},
		{"keys retire --force of an unknown key warns of nothing it did not do", nil, []string{"keys", "retire", "nope", "--force", "--file", keys}, 1, "nope", []string{"warning"}},
		// With Vault configured, an empty CODEC_SERVER_KEYS_FILE is not an
		// error (it cannot fall back to the dev key); the start fails later,
		// on the unreachable Vault, in one line too.
		{"an empty CODEC_SERVER_KEYS_FILE next to Vault is not refused for it", []string{"CODEC_SERVER_KEYS_FILE=", "VAULT_ADDR=http://127.0.0.1:1", "VAULT_TOKEN=t", "CODEC_SERVER_VAULT_KEY=k", "CODEC_SERVER_VAULT_TIMEOUT=200ms", "CODEC_SERVER_VAULT_MAX_RETRIES=0"}, nil, 1, "vault", []string{"is set but empty"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runBinary(t, dir, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tt.wantCode, stderr)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr is not one line with %q:\n%s", tt.want, stderr)
			}
			for _, bad := range tt.notWant {
				if strings.Contains(stderr, bad) {
					t.Errorf("stderr has %q:\n%s", bad, stderr)
				}
			}
		})
	}

	t.Run("a server that fails to start does not log that it stopped", func(t *testing.T) {
		t.Parallel()
		_, stderr, code := runBinary(t, dir, nil, "--keys-file", keys, "--listen", busy.Addr().String())
		if code != 1 || !strings.Contains(stderr, "address already in use") {
			t.Fatalf("exit %d, want 1 with the listen error:\n%s", code, stderr)
		}
		if strings.Contains(stderr, "codec server stopped") {
			t.Errorf("logged 'codec server stopped' after a failed start:\n%s", stderr)
		}
	})
}

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		out, stderr, code := runBinary(t, t.TempDir(), nil, args...)
		if code != 0 || !strings.HasPrefix(out, "codec-server ") || !strings.Contains(out, "github.com/envelopecodec/envelope") || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
	}
}

// TestKeysListShowsLegacyKeys: the samples' keys are listed under their
// own IDs (the default "" included), marked as decoding only.
func TestKeysListShowsLegacyKeys(t *testing.T) {
	t.Parallel()
	file := keyringtest.SamplesKeyFile(t, "", "test")
	out, stderr, code := runBinary(t, t.TempDir(), nil, "keys", "list", "--file", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"local/envelope-1", `""`, "legacy (decrypt only)"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^test\s.*legacy \(decrypt only\)`).MatchString(out) {
		t.Errorf("list lacks the legacy key test under its own ID:\n%s", out)
	}
	if strings.Contains(out, "local/test") {
		t.Errorf("a legacy key is listed under a local/ ID:\n%s", out)
	}
}
