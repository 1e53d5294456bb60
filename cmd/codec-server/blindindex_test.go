package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/blindindex"
	"github.com/envelopecodec/envelope/keyring"
)

var tokenLineRE = regexp.MustCompile(`^k[0-9a-f]{6}\.[0-9a-f]{16}$`)

// containsPieceOf reports whether out holds any 4-byte piece of value.
func containsPieceOf(out, value string) bool {
	for i := 0; i+4 <= len(value); i++ {
		if strings.Contains(out, value[i:i+4]) {
			return true
		}
	}
	return false
}

func TestBlindIndexCommandPrintsTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.json")
	if _, stderr, code := runBinary(t, dir, nil, "keys", "new", "--file", file); code != 0 {
		t.Fatalf("keys new: %s", stderr)
	}
	const value = "ada.lovelace@example.com"
	tokens := func(env []string, args ...string) string {
		t.Helper()
		out, stderr, code := runBinary(t, dir, env, append(append([]string{"blind-index", "--keys-file", file}, args...), value)...)
		if code != 0 {
			t.Fatalf("blind-index %v: exit %d: %s", args, code, stderr)
		}
		return out
	}
	first := tokens(nil, "--namespace", "default", "--field", "email")

	t.Run("one token of the key file's one key", func(t *testing.T) {
		if !tokenLineRE.MatchString(strings.TrimSuffix(first, "\n")) {
			t.Fatalf("output %q, want one line k<6 hex>.<16 hex>", first)
		}
	})
	t.Run("the same token as the blindindex package", func(t *testing.T) {
		kr, err := keyring.OpenFile(file, keyring.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ix, _ := blindindex.New(kr, blindindex.Options{})
		want, err := ix.Token(context.Background(), "default", "email", " Ada.Lovelace@EXAMPLE.com")
		if err != nil || first != want+"\n" {
			t.Fatalf("command printed %q, package computed %q (%v)", first, want, err)
		}
	})
	t.Run("no piece of the value in the output", func(t *testing.T) {
		if containsPieceOf(first, value) {
			t.Fatalf("output %q holds a piece of the value", first)
		}
	})
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		same bool
	}{
		{"deterministic", nil, []string{"--namespace", "default", "--field", "email"}, true},
		{"the namespace defaults to default", nil, []string{"--field", "email"}, true},
		{"the keys file from the environment", []string{"CODEC_SERVER_KEYS_FILE=" + file}, []string{"--field", "email"}, true},
		{"another namespace", nil, []string{"--namespace", "billing", "--field", "email"}, false},
		{"TEMPORAL_NAMESPACE names another namespace", []string{"TEMPORAL_NAMESPACE=billing"}, []string{"--field", "email"}, false},
		{"another field", nil, []string{"--namespace", "default", "--field", "contact_email"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokens(tt.env, tt.args...); (got == first) != tt.same {
				t.Fatalf("got %q, first %q: same = %v, want %v", got, first, got == first, tt.same)
			}
		})
	}
	t.Run("--bits sets the length", func(t *testing.T) {
		if got := tokens(nil, "--field", "email", "--bits", "32"); len(strings.TrimSpace(got)) != 8+8 {
			t.Fatalf("32-bit token %q", got)
		}
	})
	t.Run("the value from standard input", func(t *testing.T) {
		out, stderr, code := runBinaryStdin(t, dir, value+"\n", "blind-index", "--keys-file", file, "--field", "email", "-")
		if code != 0 || out != first {
			t.Fatalf("exit %d, %q (%s); want %q", code, out, stderr, first)
		}
	})
	t.Run("--attribute prints the query clause", func(t *testing.T) {
		got := tokens(nil, "--field", "email", "--attribute", "CustomerEmailIdx")
		if want := "CustomerEmailIdx IN ('" + strings.TrimSpace(first) + "')\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("after a rotation: two tokens, newest first, and both in the clause", func(t *testing.T) {
		rdir := t.TempDir()
		rfile := filepath.Join(rdir, "keys.json")
		runBinary(t, rdir, nil, "keys", "new", "--file", rfile)
		before, _, _ := runBinary(t, rdir, nil, "blind-index", "--keys-file", rfile, "--field", "email", value)
		if _, stderr, code := runBinary(t, rdir, nil, "keys", "rotate", "--file", rfile); code != 0 {
			t.Fatal(stderr)
		}
		after, stderr, code := runBinary(t, rdir, nil, "blind-index", "--keys-file", rfile, "--field", "email", value)
		lines := strings.Split(strings.TrimSpace(after), "\n")
		if code != 0 || len(lines) != 2 || lines[1]+"\n" != before || lines[0]+"\n" == before || !tokenLineRE.MatchString(lines[0]) {
			t.Fatalf("exit %d %s: after rotation %q, before %q; want [new, old]", code, stderr, after, before)
		}
		clause, _, _ := runBinary(t, rdir, nil, "blind-index", "--keys-file", rfile, "--field", "email", "--attribute", "CustomerEmailIdx", value)
		if want := "CustomerEmailIdx IN ('" + lines[0] + "', '" + lines[1] + "')\n"; clause != want {
			t.Fatalf("clause %q, want %q", clause, want)
		}
	})
}

func TestBlindIndexCommandRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.json")
	runBinary(t, dir, nil, "keys", "new", "--file", file)
	const secret = "no-digits-secret-value"
	for _, tt := range []struct {
		name string
		args []string
		code int
	}{
		{"no keyring", []string{"blind-index", "--field", "email", secret}, 2},
		{"no field", []string{"blind-index", "--keys-file", file, secret}, 2},
		{"no value", []string{"blind-index", "--keys-file", file, "--field", "email"}, 2},
		{"two values", []string{"blind-index", "--keys-file", file, "--field", "email", secret, secret}, 2},
		{"an unknown normaliser", []string{"blind-index", "--keys-file", file, "--field", "email", "--normalize", "upper", secret}, 2},
		{"bits not a multiple of 4", []string{"blind-index", "--keys-file", file, "--field", "email", "--bits", "30", secret}, 2},
		{"a bad attribute name", []string{"blind-index", "--keys-file", file, "--field", "email", "--attribute", "A') OR ('1", secret}, 1},
		{"a phone number without digits", []string{"blind-index", "--keys-file", file, "--field", "phone", secret}, 1},
		{"a missing key file", []string{"blind-index", "--keys-file", filepath.Join(dir, "missing.json"), "--field", "email", secret}, 1},
		{"a value that looks like a flag", []string{"blind-index", "--keys-file", file, "--field", "email", "-" + secret}, 2},
		{"the same after the flags' values", []string{"blind-index", "--keys-file=" + file, "--field", "email", "--bits", "64", "--" + secret + "=x"}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runBinary(t, dir, nil, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			if strings.Contains(out+stderr, "secret-value") {
				t.Fatalf("output holds the value:\n%s%s", out, stderr)
			}
			if !strings.HasPrefix(stderr, "codec-server blind-index:") {
				t.Fatalf("stderr %q, want a line starting with the command", stderr)
			}
		})
	}
}

// TestBlindIndexRefusesAValueTooLongToRead: a value on standard input
// longer than the 64 KiB read is refused, never cut to a prefix whose
// token would silently find nothing.
func TestBlindIndexRefusesAValueTooLongToRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.json")
	runBinary(t, dir, nil, "keys", "new", "--file", file)
	out, stderr, code := runBinaryStdin(t, dir, strings.Repeat("a", 70_000), "blind-index", "--keys-file", file, "--field", "name", "-")
	if code != 1 || out != "" || !strings.Contains(stderr, "longer than") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1, nothing printed, saying the value is too long", code, out, stderr)
	}
	if _, _, code := runBinaryStdin(t, dir, strings.Repeat("a", 65_536)+"\n", "blind-index", "--keys-file", file, "--field", "name", "-"); code != 0 {
		t.Fatalf("a value of exactly 64 KiB: exit %d, want 0", code)
	}
}

// runBinaryStdin runs the binary as runBinary does, with stdin as its
// standard input.
func runBinaryStdin(t *testing.T, dir, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}
