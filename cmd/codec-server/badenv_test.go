package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestBadEnvironmentValueIsOneLineEverywhere: the server, decode and keys
// shred read the same keyring variables, and a value one of them refuses
// is said by each in one line naming the variable (not its value), with
// exit status 2.
func TestBadEnvironmentValueIsOneLineEverywhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "history.json")
	if err := os.WriteFile(input, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"CODEC_SERVER_VAULT_MAX_RETRIES=abc"}
	for _, tt := range []struct {
		name   string
		args   []string
		prefix string
	}{
		{"the server", []string{"--keys-file", keys, "--listen", "127.0.0.1:0"}, "codec-server: "},
		{"decode", []string{"decode", "--keys-file", keys, input}, "codec-server decode: "},
		{"keys shred", []string{"keys", "shred", "--namespace", "default", "--subject", "alice", "--subject-store", "dir", "--subject-dir", filepath.Join(dir, "s")}, "codec-server keys shred: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runBinary(t, dir, env, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.prefix) || !strings.Contains(lines[0], "CODEC_SERVER_VAULT_MAX_RETRIES") {
				t.Fatalf("stderr is not one line %q... naming the variable:\n%s", tt.prefix, stderr)
			}
			if strings.Contains(stderr, "abc") {
				t.Errorf("stderr shows the value: %s", stderr)
			}
		})
	}
}

// TestBadFlagIsSaidOnceEverywhere: the server, decode and keys shred say
// an unknown flag the same way: one line naming it, first, then the usage
// (never the error again under it), with exit status 2.
func TestBadFlagIsSaidOnceEverywhere(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const said = "flag provided but not defined: -no-such-flag"
	for _, tt := range []struct {
		name  string
		args  []string
		usage string
	}{
		{"the server", []string{"--no-such-flag"}, "codec-server [flags]"},
		{"decode", []string{"decode", "--no-such-flag"}, "codec-server decode [flags]"},
		{"keys shred", []string{"keys", "shred", "--no-such-flag"}, "codec-server keys shred"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runBinary(t, dir, nil, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, stderr)
			}
			first, rest, _ := strings.Cut(stderr, "\n")
			if first != said {
				t.Errorf("first line %q, want %q", first, said)
			}
			if strings.Contains(rest, "no-such-flag") {
				t.Errorf("the bad flag is said again after the first line:\n%s", stderr)
			}
			if !strings.Contains(rest, tt.usage) {
				t.Errorf("no usage (%q) after the error:\n%s", tt.usage, stderr)
			}
		})
	}
}

// TestShredAuditNamesWhoAsked: the audit line of keys shred records --by,
// else $USER, else the uid; never an empty "by".
func TestShredAuditNamesWhoAsked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"--by", []string{"USER=ops"}, []string{"--by", "dpo@example.com"}, `"by":"dpo@example.com"`},
		{"$USER", []string{"USER=ops"}, nil, `"by":"ops"`},
		{"neither: the uid", nil, nil, `"by":"uid ` + strconv.Itoa(os.Getuid()) + `"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			audit := filepath.Join(dir, "audit.jsonl")
			if _, err := subject.InitDir(filepath.Join(dir, "s")); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"keys", "shred", "--namespace", "default", "--subject", "alice", "--subject-store", "dir", "--subject-dir", filepath.Join(dir, "s"), "--audit-log", audit}, tt.args...)
			out, stderr, code := runBinary(t, dir, tt.env, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, stderr)
			}
			line, err := os.ReadFile(audit)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(line), tt.want) {
				t.Errorf("audit line %s lacks %s", line, tt.want)
			}
		})
	}
}

// TestListenLocalhostInAnyCase: host names are case-insensitive, so
// --listen LOCALHOST:0 is the loopback default (no authentication, the
// development key file), as the Host check of requests already agreed.
func TestListenLocalhostInAnyCase(t *testing.T) {
	t.Parallel()
	m := NewMain()
	m.Stderr = os.Stderr
	m.LookupEnv = func(string) (string, bool) { return "", false }
	m.Environ = func() []string { return nil }
	if err := m.ParseFlags(t.Context(), []string{"--listen", "LocalHost:0"}); err != nil {
		t.Fatalf("ParseFlags: %v", err)
	}
	if m.Config.Keys.Source() != "dev-file" {
		t.Errorf("source %q, want dev-file", m.Config.Keys.Source())
	}
}
