package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/keyring"
)

// procKB reads a "Vm...:" line of /proc/<pid>/status, in kB.
func procKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, field+":")), "%d", &kb)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

type memFixture struct {
	dir, keys string
	iss       *jwttest.Issuer
	codec     *codec.Codec
	token     string
}

func newMemFixture(t *testing.T) *memFixture {
	dir := t.TempDir()
	f := &memFixture{dir: dir, keys: filepath.Join(dir, "keys.json"), iss: jwttest.New(t, jwttest.Options{})}
	if _, err := keyring.CreateFile(f.keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.OpenFile(f.keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.codec, _ = codec.New(kr, codec.Options{})
	f.token = f.iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}})
	return f
}

// server starts the real binary with every default limit, JWT and the
// audit log on, GOMEMLIMIT=256MiB as deploy/kubernetes sets it (the
// container's memory limit), and returns its URL and pid. extra flags
// follow the others.
func (f *memFixture) server(t *testing.T, extra ...string) (string, int) {
	args := []string{"--listen", "127.0.0.1:0", "--keys-file", f.keys,
		"--jwks-file", f.iss.WriteJWKSFile(t, filepath.Join(t.TempDir(), "jwks.json")), "--jwt-issuer", f.iss.IssuerURL(), "--jwt-audience", f.iss.Audience(),
		"--audit-log", filepath.Join(t.TempDir(), "audit.log")}
	p := start(t, f.dir, []string{"GOMEMLIMIT=256MiB"}, append(args, extra...)...)
	return p.ready(t), p.cmd.Process.Pid
}
