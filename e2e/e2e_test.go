// Package e2e runs the examples, the codec server, the temporal CLI and the
// Web UI against a real Temporal dev server, and checks that Temporal only
// ever stores ciphertext while the CLI and the UI show plaintext through the
// codec server. The real components come from `make tools` and `make build`;
// a missing one fails the tests, it never skips them.
package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
)

var (
	buildDir  string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	// A test run started in the background (nohup, some CI runners) may
	// inherit SIGINT ignored, and children inherit an ignored signal: the
	// demo tests press Ctrl-C on a child. Catching SIGINT here (and
	// ignoring it as before) gives children the default disposition.
	if signal.Ignored(os.Interrupt) {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt)
		go func() {
			for range c {
			}
		}()
	}
	dir, err := os.MkdirTemp("", "envelope-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// exampleBinary builds the example command name (worker or starter) once
// per test run and returns its path.
func exampleBinary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		root := testenv.RepoRoot(t)
		for _, n := range []string{"worker", "starter"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, n), "./examples/"+n)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build ./examples/%s: %v\n%s", n, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

// secrets is a customer record with values unique to one test, so finding
// one of them anywhere is proof of a leak.
type secrets struct {
	CustomerID, Name, Email, Card, Address, Approver, Note string
}

func newSecrets(t *testing.T) secrets {
	t.Helper()
	r := func(n int) string {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(b)
	}
	digits := func() string {
		b := make([]byte, 12)
		rand.Read(b)
		var s strings.Builder
		for i, c := range b {
			if i > 0 && i%4 == 0 {
				s.WriteByte(' ')
			}
			s.WriteByte('0' + c%10)
		}
		return s.String()
	}
	return secrets{
		CustomerID: "C-" + r(3),
		Name:       "Ada Lovelace-" + r(4),
		Email:      "ada." + r(4) + "@example.com",
		Card:       "4000 " + digits(),
		Address:    r(4) + " Secret Lane, London",
		Approver:   "grace." + r(4) + "@example.com",
		Note:       "checked passport " + r(4),
	}
}

// all returns the values that must never reach Temporal in plaintext. The
// customer ID is left out: it is part of the workflow ID on purpose.
func (s secrets) all() []string {
	return []string{s.Name, s.Email, s.Card, s.Address, s.Approver, s.Note}
}

// env is what the worker and starter processes need to reach Temporal and
// the keys.
type env struct {
	temporal *testenv.Temporal
	// keyArgs are the keyring flags, e.g. --keys-file F.
	keyArgs []string
	// keyEnv are extra environment variables, e.g. VAULT_TOKEN.
	keyEnv []string
	// namespace is the examples' TEMPORAL_NAMESPACE; default the dev
	// server's, "default".
	namespace string
}

func (e env) cmd(t *testing.T, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(exampleBinary(t, name), append(append([]string(nil), e.keyArgs...), args...)...)
	cmd.Dir = t.TempDir() // a forgotten --keys-file would create .data/ here, not in the repository
	ns := e.temporal.Namespace
	if e.namespace != "" {
		ns = e.namespace
	}
	cmd.Env = append(cleanEnv(os.Environ()),
		"TEMPORAL_ADDRESS="+e.temporal.Address,
		"TEMPORAL_NAMESPACE="+ns,
	)
	cmd.Env = append(cmd.Env, e.keyEnv...)
	return cmd
}

// cleanEnv drops the variables that could point the examples at another
// Temporal, key file, Vault or AWS account than the test's.
func cleanEnv(in []string) []string {
	var out []string
	for _, kv := range in {
		if strings.HasPrefix(kv, "TEMPORAL_") || strings.HasPrefix(kv, "CODEC_SERVER_") || strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// startWorker runs examples/worker until the test ends.
func startWorker(t *testing.T, e env, taskQueue string) *testenv.Process {
	t.Helper()
	p := testenv.StartProcess(t, "worker", e.cmd(t, "worker", "--task-queue", taskQueue))
	if err := p.WaitOutput(context.Background(), "worker started", time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	return p
}

// run is one workflow run made by examples/starter.
type run struct {
	WorkflowID, RunID string
	Output            string
}

var startedRE = regexp.MustCompile(`started workflow_id=(\S+) run_id=(\S+)`)

// runStarter runs examples/starter with the secrets and waits for it to
// print the workflow's result.
func runStarter(t *testing.T, e env, taskQueue string, s secrets) run {
	t.Helper()
	wid := "onboard-" + s.CustomerID
	p := testenv.StartProcess(t, "starter", e.cmd(t, "starter",
		"--task-queue", taskQueue, "--workflow-id", wid,
		"--customer-id", s.CustomerID, "--name", s.Name, "--email", s.Email,
		"--card", s.Card, "--address", s.Address, "--approver", s.Approver, "--note", s.Note,
		"--timeout", "90s"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("starter: %v\n%s", err, p.Output())
	}
	out := p.Output()
	m := startedRE.FindStringSubmatch(out)
	if m == nil || m[1] != wid {
		t.Fatalf("starter did not print the started workflow:\n%s", out)
	}
	// The starter itself decodes: its output holds the plaintext result.
	res := resultLine(t, out)
	for _, want := range []string{"Welcome aboard, " + s.Name + "!", s.Email, s.Approver, s.Note} {
		if !strings.Contains(res, want) {
			t.Errorf("starter result %s lacks %q", res, want)
		}
	}
	if !strings.Contains(out, "status: ") {
		t.Errorf("starter printed no query status:\n%s", out)
	}
	return run{WorkflowID: m[1], RunID: m[2], Output: out}
}

func resultLine(t *testing.T, out string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if r, ok := strings.CutPrefix(sc.Text(), "result: "); ok {
			return r
		}
	}
	t.Fatalf("starter printed no result:\n%s", out)
	return ""
}

// newKeyFile writes a fresh key file in a temporary folder.
func newKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	return path
}

// payloads returns every payload object ({"metadata": ..., "data": ...})
// found anywhere in a JSON document, except search attributes: Temporal
// indexes those, so no codec ever sees them (the examples set none; the
// server adds BuildIds). The secret search still covers them.
func payloads(v any) []map[string]any {
	var out []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if md, ok := v["metadata"].(map[string]any); ok {
				if _, ok := md["encoding"]; ok {
					out = append(out, v)
				}
			}
			for k, c := range v {
				if k != "searchAttributes" {
					walk(c)
				}
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// b64 decodes a base64 string from the CLI's JSON, or returns nil.
func b64(v any) []byte {
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// decodedStrings returns, for every string value in the JSON document
// that is valid base64, its decoded bytes: payload data and metadata are
// base64 in the CLI's JSON. Only for claims about JSON itself (what
// Temporal stores, read with -o json and no codec; an HTTP body as sent),
// never for what a person is shown: that is the CLI's text as printed.
func decodedStrings(doc any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		case string:
			if b := b64(v); b != nil {
				out = append(out, string(b))
			}
		}
	}
	walk(doc)
	return out
}

// assertNoPlaintext checks a CLI JSON output: it parses, every payload in
// it is binary/encrypted, there are at least minPayloads of them, and no
// secret appears in the text or in any base64-decoded string.
func assertNoPlaintext(t *testing.T, what, out string, s secrets, minPayloads int) {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
	}
	ps := payloads(doc)
	if len(ps) < minPayloads {
		t.Errorf("%s: %d payloads, want at least %d:\n%s", what, len(ps), minPayloads, out)
	}
	for i, p := range ps {
		md := p["metadata"].(map[string]any)
		if enc := string(b64(md["encoding"])); enc != "binary/encrypted" {
			t.Errorf("%s: payload %d has encoding %q, want binary/encrypted", what, i, enc)
		}
	}
	haystacks := append([]string{out}, decodedStrings(doc)...)
	for _, secret := range s.all() {
		for _, h := range haystacks {
			if strings.Contains(h, secret) {
				t.Errorf("%s: plaintext %q found in the stored history", what, secret)
				break
			}
		}
	}
}

// detailedLines are the lines `temporal workflow show --detailed` prints
// for the examples' secrets when it decodes through the codec server, as a
// person reads them: the workflow input and memo, the signal and the
// result.
func (s secrets) detailedLines() []string {
	return []string{
		"input[0].Name: " + s.Name,
		"input[0].Email: " + s.Email,
		"input[0].Card: " + s.Card,
		"input[0].Address: " + s.Address,
		"memo.fields.customer: " + s.Name,
		"memo.fields.email: " + s.Email,
		"input[0].By: " + s.Approver,
		"input[0].Note: " + s.Note,
		"result[0].Welcome: Welcome aboard, " + s.Name + "!",
	}
}

// describedMemo is what `temporal workflow describe` prints of the
// examples' decoded memo: its Memo row holds each field's data as quoted
// JSON, e.g. data:"\"Ada Lovelace\"".
func (s secrets) describedMemo() []string {
	return []string{`data:"\"` + s.Name + `\""`, `data:"\"` + s.Email + `\""`}
}

// assertLines checks that each of want is a whole line of out, a CLI text
// output as printed (trailing blanks aside).
func assertLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	lines := make(map[string]bool)
	for _, l := range strings.Split(out, "\n") {
		lines[strings.TrimRight(l, " \t\r")] = true
	}
	var missing []string
	for _, w := range want {
		if !lines[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not show the lines %q; it printed:\n%s", what, missing, out)
	}
}

// assertShown checks that out, a CLI text output as printed, contains each
// of want.
func assertShown(t *testing.T, what, out string, want ...string) {
	t.Helper()
	var missing []string
	for _, w := range want {
		if !strings.Contains(out, w) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not show %q; it printed:\n%s", what, missing, out)
	}
}

// assertNotShown checks that out, text as printed or sent, contains none of
// secrets.
func assertNotShown(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s shows the plaintext %q", what, s)
		}
	}
}
