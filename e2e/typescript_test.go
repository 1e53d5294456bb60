package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
)

// The TypeScript package (typescript/) is the second implementation of the
// format. These tests run its real programs: a @temporalio/worker worker
// and a seal/open command, compiled from the package's sources by tsc.

var (
	tsOnce sync.Once
	tsErr  error
)

// tsProgram compiles the TypeScript package once per test run and returns
// the path of dist/e2e/<name>.js. The package's dependencies must be
// installed: `make test` runs `npm ci` in typescript/ (make typescript).
func tsProgram(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "typescript")
	tsOnce.Do(func() {
		tsc := filepath.Join(dir, "node_modules", "typescript", "bin", "tsc")
		if _, err := os.Stat(tsc); err != nil {
			tsErr = fmt.Errorf("the TypeScript package's dependencies are not installed; run `make typescript` (npm ci in typescript/): %v", err)
			return
		}
		cmd := exec.Command("node", tsc, "-p", ".")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			tsErr = fmt.Errorf("tsc -p typescript: %v\n%s", err, out)
		}
	})
	if tsErr != nil {
		t.Fatal(tsErr)
	}
	return filepath.Join(dir, "dist", "e2e", name+".js")
}

// startTSWorker runs the TypeScript worker (typescript/e2e/worker.ts) on
// taskQueue until the test ends; keyEnv names its keyring.
func startTSWorker(t *testing.T, tc *testenv.Temporal, taskQueue string, keyEnv ...string) *testenv.Process {
	t.Helper()
	cmd := exec.Command("node", tsProgram(t, "worker"))
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(os.Environ()),
		"TEMPORAL_ADDRESS="+tc.Address,
		"TEMPORAL_NAMESPACE="+tc.Namespace,
		"TASK_QUEUE="+taskQueue,
	)
	cmd.Env = append(cmd.Env, keyEnv...)
	p := testenv.StartProcess(t, "ts-worker", cmd)
	// Bundling the workflow code takes some seconds on a loaded machine.
	if err := p.WaitOutput(context.Background(), "worker started", 3*time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	return p
}

// historyEvent returns the attributes of the first event of the JSON
// history that has attrs (e.g. "workflowExecutionCompletedEventAttributes").
func historyEvent(t *testing.T, doc any, attrs string) map[string]any {
	t.Helper()
	m, _ := doc.(map[string]any)
	events, _ := m["events"].([]any)
	for _, e := range events {
		if a, ok := e.(map[string]any)[attrs].(map[string]any); ok {
			return a
		}
	}
	t.Fatalf("history has no event with %s", attrs)
	return nil
}

// firstPayloadMetadata returns metadata entry key of the first payload under
// attrs[field] (a Payloads message), base64-decoded.
func firstPayloadMetadata(t *testing.T, attrs map[string]any, field, key string) string {
	t.Helper()
	ps := payloads(attrs[field])
	if len(ps) == 0 {
		t.Fatalf("no payload under %s", field)
	}
	return string(b64(ps[0]["metadata"].(map[string]any)[key]))
}

// checkTypeScriptHistory checks the raw history of a run the Go starter
// started and the TypeScript worker ran: only envelope/v2 payloads for the
// namespace, no plaintext, and the activity's and the workflow's results
// sealed under the worker's data key, not the starter's.
func checkTypeScriptHistory(t *testing.T, tc *testenv.Temporal, r run, s secrets, keyIDPrefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if raw.Err != nil {
		t.Fatal(raw)
	}
	// Workflow input, activity input and result, signal, workflow result.
	assertNoPlaintext(t, "workflow show", raw.Stdout, s, 5)
	var doc any
	if err := json.Unmarshal([]byte(raw.Stdout), &doc); err != nil {
		t.Fatal(err)
	}
	for i, p := range payloads(doc) {
		md := p["metadata"].(map[string]any)
		if f, ns, id := string(b64(md["encryption-format"])), string(b64(md["encryption-namespace"])), string(b64(md["encryption-key-id"])); f != "envelope/v2" || ns != tc.Namespace || !strings.HasPrefix(id, keyIDPrefix) {
			t.Errorf("payload %d: format %q, namespace %q, key %q; want envelope/v2 for %q under %s...", i, f, ns, id, tc.Namespace, keyIDPrefix)
		}
	}
	started := firstPayloadMetadata(t, historyEvent(t, doc, "workflowExecutionStartedEventAttributes"), "input", "encryption-wrapped-key")
	scheduled := firstPayloadMetadata(t, historyEvent(t, doc, "activityTaskScheduledEventAttributes"), "input", "encryption-wrapped-key")
	activity := firstPayloadMetadata(t, historyEvent(t, doc, "activityTaskCompletedEventAttributes"), "result", "encryption-wrapped-key")
	completed := firstPayloadMetadata(t, historyEvent(t, doc, "workflowExecutionCompletedEventAttributes"), "result", "encryption-wrapped-key")
	if started == completed || started == activity || started == scheduled {
		t.Errorf("the worker's payloads share the starter's data key: not sealed by the TypeScript worker")
	}
	if completed != activity || completed != scheduled {
		t.Errorf("the TypeScript worker sealed its payloads under several data keys; want one reused (DataKeyMaxUses)")
	}
}

// checkCLIShowsPlaintext runs `temporal workflow show` through the Go codec
// server and checks the text it prints: every secret, as the user reads it.
func checkCLIShowsPlaintext(t *testing.T, tc *testenv.Temporal, cs *testenv.CodecServer, r run, s secrets, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// --detailed prints every event with its payloads, not only the result.
	dec := tc.CLI(ctx, append([]string{"workflow", "show", "--detailed", "-w", r.WorkflowID, "-r", r.RunID, "--codec-endpoint", cs.URL}, extra...)...)
	if dec.Err != nil {
		t.Fatalf("%s\ncodec server:\n%s", dec, cs.Output())
	}
	t.Logf("temporal workflow show through the codec server:\n%s", dec.Stdout)
	// Lines as the CLI prints them: the Go starter's input, the TypeScript
	// workflow's activity input, the TypeScript activity's result, the Go
	// starter's signal and the TypeScript workflow's result.
	for _, want := range []string{
		"input[0].Name: " + s.Name,
		"input[0].Card: " + s.Card,
		"input[0].Address: " + s.Address,
		"memo.fields.email: " + s.Email,
		"activityType.name: CheckCustomer",
		"result[0].MaskedCard: **** " + s.Card[len(s.Card)-4:],
		"result[0].Contact: " + s.Name + " <" + s.Email + ">, " + s.Address,
		"input[0].By: " + s.Approver,
		"input[0].Note: " + s.Note,
		"result[0].Welcome: Welcome aboard, " + s.Name + "!",
		"sdkMetadata.sdkName: temporal-typescript",
	} {
		if !strings.Contains(dec.Stdout, want) {
			t.Errorf("workflow show does not print %q", want)
		}
	}
	// --detailed prints metadata values in base64: a payload left sealed
	// would show its encoding as "YmluYXJ5L2VuY3J5cHRlZA==".
	assertNotShown(t, "workflow show --detailed", dec.Stdout, "binary/encrypted", "YmluYXJ5L2VuY3J5cHRlZA==")
}

// TestTypeScriptWorkerSharesKeysWithGo runs the example workflow on a real
// TypeScript worker with the Go examples' key file: the Go starter seals
// the input, the worker opens it, seals its activity and workflow results,
// the starter reads the result, Temporal stores only ciphertext, and the
// CLI shows the whole history through the Go codec server.
func TestTypeScriptWorkerSharesKeysWithGo(t *testing.T) {
	t.Parallel()
	keys := newKeyFile(t)
	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: []string{"--keys-file", keys, "--insecure-no-auth"}})
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	startTSWorker(t, tc, "tq-ts", "ENVELOPE_KEYS_FILE="+keys)
	s := newSecrets(t)
	r := runStarter(t, env{temporal: tc, keyArgs: []string{"--keys-file", keys}}, "tq-ts", s)
	checkTypeScriptHistory(t, tc, r, s, "local/")
	checkCLIShowsPlaintext(t, tc, cs, r, s)
}

// TestTypeScriptWorkerWithVaultTransit is the same with Vault transit and a
// per-namespace key name template: the Go starter and the codec server use
// a token, the TypeScript worker logs in with AppRole.
func TestTypeScriptWorkerWithVaultTransit(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal-default")
	v.WritePolicy(t, "envelope", testenv.TransitPolicy("temporal-default"))
	token := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"envelope"}, Renewable: true, TTL: "1h"})
	roleID, secretID := v.EnableAppRole(t, "ts-worker", testenv.AppRoleOptions{Policies: []string{"envelope"}})
	keyArgs := []string{"--vault-addr", v.Addr, "--vault-key", "temporal-{namespace}"}
	keyEnv := []string{"VAULT_TOKEN=" + token}
	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: append(append([]string(nil), keyArgs...), "--insecure-no-auth"), Env: keyEnv})
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	startTSWorker(t, tc, "tq-ts-vault", "VAULT_ADDR="+v.Addr, "VAULT_KEY=temporal-{namespace}", "VAULT_ROLE_ID="+roleID, "VAULT_SECRET_ID="+secretID)
	s := newSecrets(t)
	r := runStarter(t, env{temporal: tc, keyArgs: keyArgs, keyEnv: keyEnv}, "tq-ts-vault", s)
	checkTypeScriptHistory(t, tc, r, s, "vault/transit/temporal-default/v")
	checkCLIShowsPlaintext(t, tc, cs, r, s)
}

// tsSeal runs `node dist/e2e/seal.js mode --namespace ns` on payloads and
// returns its payloads, or the error class and message it printed.
func tsSeal(t *testing.T, keyEnv []string, mode, namespace string, in []*commonpb.Payload, extra ...string) ([]*commonpb.Payload, string) {
	t.Helper()
	type jsonPayload struct {
		Metadata map[string]string `json:"metadata"`
		Data     string            `json:"data"`
	}
	var req []jsonPayload
	for _, p := range in {
		jp := jsonPayload{Metadata: map[string]string{}, Data: base64.StdEncoding.EncodeToString(p.Data)}
		for k, v := range p.Metadata {
			jp.Metadata[k] = base64.StdEncoding.EncodeToString(v)
		}
		req = append(req, jp)
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", append([]string{tsProgram(t, "seal"), mode, "--namespace", namespace}, extra...)...)
	cmd.Env = append(cleanEnv(os.Environ()), keyEnv...)
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var failed struct{ Error, Message string }
	if json.Unmarshal(stdout.Bytes(), &failed) == nil && failed.Error != "" {
		return nil, failed.Error + ": " + failed.Message
	}
	if runErr != nil {
		t.Fatalf("seal.js %s: %v\n%s%s", mode, runErr, stdout.String(), stderr.String())
	}
	var resp []jsonPayload
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		t.Fatalf("seal.js %s printed %q: %v", mode, stdout.String(), err)
	}
	out := make([]*commonpb.Payload, len(resp))
	for i, jp := range resp {
		p := &commonpb.Payload{Metadata: map[string][]byte{}}
		p.Data, _ = base64.StdEncoding.DecodeString(jp.Data)
		for k, v := range jp.Metadata {
			p.Metadata[k], _ = base64.StdEncoding.DecodeString(v)
		}
		out[i] = p
	}
	return out, ""
}

// TestTypeScriptAndGoOpenEachOthersPayloads seals payloads at run time in
// one language and opens them in the other, with one key file: compressed
// or not, in the namespace they were sealed for; in another namespace both
// refuse them.
func TestTypeScriptAndGoOpenEachOthersPayloads(t *testing.T) {
	t.Parallel()
	keys := newKeyFile(t)
	keyEnv := []string{"ENVELOPE_KEYS_FILE=" + keys}
	kr, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	goCodec := func(t *testing.T, namespace string, compress bool) *codec.Codec {
		c, err := codec.New(kr, codec.Options{Namespace: namespace, Compress: compress})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	s := newSecrets(t)
	plain := []*commonpb.Payload{
		{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"Name":"` + s.Name + `","Card":"` + s.Card + `"}`)},
		{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + strings.Repeat(s.Note+" ", 40) + `"`)},
		{Metadata: map[string][]byte{"encoding": []byte("binary/null")}},
	}
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("TypeScript seals, Go opens (compress %v)", compress), func(t *testing.T) {
			var extra []string
			if compress {
				extra = []string{"--compress"}
			}
			sealed, failed := tsSeal(t, keyEnv, "seal", "payments", plain, extra...)
			if failed != "" {
				t.Fatal(failed)
			}
			for i, p := range sealed {
				if f, ns := string(p.Metadata["encryption-format"]), string(p.Metadata["encryption-namespace"]); f != "envelope/v2" || ns != "payments" {
					t.Errorf("payload %d: format %q namespace %q, want envelope/v2 for payments", i, f, ns)
				}
				if bytes.Contains(p.Data, []byte(s.Card)) || bytes.Contains(p.Data, []byte(s.Note)) {
					t.Errorf("payload %d: plaintext in the sealed data", i)
				}
			}
			if compress && len(sealed[1].Data) >= len(plain[1].Data) {
				t.Errorf("compressed payload is %d bytes, the plaintext %d", len(sealed[1].Data), len(plain[1].Data))
			}
			out, err := goCodec(t, "payments", false).Decode(sealed)
			if err != nil {
				t.Fatal(err)
			}
			for i := range plain {
				if !proto.Equal(out[i], plain[i]) {
					t.Errorf("payload %d: Go opened %v, want %v", i, out[i], plain[i])
				}
			}
			_, err = goCodec(t, "sandbox", false).Decode(sealed)
			var ne *codec.NamespaceError
			if !errors.As(err, &ne) || ne.Sealed != "payments" || ne.Decoding != "sandbox" {
				t.Errorf("Go decoding in sandbox: %v, want a NamespaceError (sealed payments, decoding sandbox)", err)
			}
		})
		t.Run(fmt.Sprintf("Go seals, TypeScript opens (compress %v)", compress), func(t *testing.T) {
			sealed, err := goCodec(t, "payments", compress).Encode(plain)
			if err != nil {
				t.Fatal(err)
			}
			out, failed := tsSeal(t, keyEnv, "open", "payments", sealed)
			if failed != "" {
				t.Fatal(failed)
			}
			for i := range plain {
				if !proto.Equal(out[i], plain[i]) {
					t.Errorf("payload %d: TypeScript opened %v, want %v", i, out[i], plain[i])
				}
			}
			_, failed = tsSeal(t, keyEnv, "open", "sandbox", sealed)
			if !strings.HasPrefix(failed, "NamespaceError: ") || !strings.Contains(failed, `sealed for namespace "payments", decoding in namespace "sandbox"`) {
				t.Errorf("TypeScript decoding in sandbox: %q, want a NamespaceError", failed)
			}
			if strings.Contains(failed, s.Card) {
				t.Errorf("TypeScript's error leaks plaintext: %s", failed)
			}
		})
	}
}
