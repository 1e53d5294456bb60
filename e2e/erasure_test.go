package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
)

const erasedText = "[erased: data subject key shredded]"

// subjectPolicy lets workers and codec servers use (never delete) the
// data subject keys (docs/ERASURE.md).
const subjectPolicy = `
path "transit/keys/subject-*" {
  capabilities       = ["create", "update"]
  allowed_parameters = { "type" = ["aes256-gcm96"] }
}
path "transit/datakey/plaintext/subject-*" { capabilities = ["update"] }
path "transit/decrypt/subject-*"           { capabilities = ["update"] }
path "transit/hmac/subject-*"              { capabilities = ["update"] }
path "transit/hmac/tomb-subject-*"         { capabilities = ["update"] }
`

// TestErasureByKey is the done-when of erasure by key: two customers'
// workflows sealed under their own Vault transit keys (named by handles,
// never by the customer); one customer's key is shredded with `codec-server
// keys shred`; then the CLI (its text as printed) and the Web UI (through a
// codec server started after the shred) show the other customer's data
// and the shredded customer's payloads as erased, the worker refuses the
// shredded customer within SubjectKeyMaxAge, and neither Vault's audit
// device nor the codec servers' logs name the customer.
func TestErasureByKey(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	vaultAudit := filepath.Join(t.TempDir(), "vault-audit.log")
	v.Write(t, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": vaultAudit}})
	v.WritePolicy(t, "envelope", testenv.TransitPolicy("temporal")+subjectPolicy)
	token := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"envelope"}, Renewable: true, TTL: "1h"})
	keyArgs := []string{"--vault-addr", v.Addr, "--vault-key", "temporal", "--subject-store", "vault"}
	keyEnv := []string{"VAULT_TOKEN=" + token}

	// The operator creates the store once (root token).
	operator := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(testenv.RepoRoot(t), "bin", "codec-server"), append(args, "--subject-store", "vault", "--vault-addr", v.Addr, "--vault-key", "temporal")...)
		cmd.Env = append(cleanEnv(os.Environ()), "VAULT_TOKEN="+v.Token, "USER=dpo")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("codec-server %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	operator("keys", "init-subject-store")

	uiPort := testenv.FreePort(t)
	uiOrigin := fmt.Sprintf("http://127.0.0.1:%d", uiPort)
	csOpts := testenv.CodecServerOptions{Args: append(append([]string(nil), keyArgs...), "--cors-origin", uiOrigin, "--log-format", "json"), Env: keyEnv}
	// The Web UI's codec server decodes nothing before the shred, so its
	// caches hold no key of the shredded customer.
	uiCS := testenv.StartCodecServer(t, csOpts)
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{UIPort: uiPort, UICodecEndpoint: uiCS.URL})
	e := env{temporal: tc, keyArgs: keyArgs, keyEnv: keyEnv}
	gone, kept := newSecrets(t), newSecrets(t)
	startWorker(t, e, "tq-erasure")
	rGone := runStarter(t, e, "tq-erasure", gone)
	rKept := runStarter(t, e, "tq-erasure", kept)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli := func(args ...string) testenv.CLIResult {
		t.Helper()
		res := tc.CLI(ctx, args...)
		if res.Err != nil {
			t.Fatalf("%s", res)
		}
		return res
	}
	show := func(r run, extra ...string) testenv.CLIResult {
		t.Helper()
		return cli(append([]string{"workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json"}, extra...)...)
	}

	// The raw history: only ciphertext, every payload of a customer under
	// one subject key whose ID names a handle, never the customer.
	handles := map[string]string{}
	for _, c := range []struct {
		r run
		s secrets
	}{{rGone, gone}, {rKept, kept}} {
		raw := show(c.r)
		assertNoPlaintext(t, "raw history of "+c.s.CustomerID, raw.Stdout, c.s, 5)
		var doc any
		json.Unmarshal([]byte(raw.Stdout), &doc)
		for i, p := range payloads(doc) {
			id := string(b64(p["metadata"].(map[string]any)["encryption-key-id"]))
			h, _, _ := strings.Cut(strings.TrimPrefix(id, "subject/vault/"), "/")
			switch {
			case !strings.HasPrefix(id, "subject/vault/") || len(h) != 32:
				t.Errorf("%s: payload %d has key ID %q, want subject/vault/<handle>/...", c.s.CustomerID, i, id)
			case strings.Contains(strings.ToLower(id), strings.ToLower(c.s.CustomerID)):
				t.Errorf("%s: payload %d's key ID %q names the customer", c.s.CustomerID, i, id)
			case handles[c.s.CustomerID] != "" && handles[c.s.CustomerID] != h:
				t.Errorf("%s: payload %d is under handle %s, others under %s", c.s.CustomerID, i, h, handles[c.s.CustomerID])
			}
			handles[c.s.CustomerID] = h
		}
		desc := cli("workflow", "describe", "-w", c.r.WorkflowID, "-r", c.r.RunID, "-o", "json")
		assertNoPlaintext(t, "raw memo of "+c.s.CustomerID, desc.Stdout, c.s, 2)
	}
	goneH, keptH := handles[gone.CustomerID], handles[kept.CustomerID]
	if goneH == "" || goneH == keptH {
		t.Fatalf("handles: %v", handles)
	}

	// Vault holds one transit key per customer, named by the handle, and
	// none of them can be copied out (a copy no shred reaches).
	dump := vaultDump(t, v)
	if !strings.Contains(dump, `"name":"subject-`+goneH+`"`) || !strings.Contains(dump, `"name":"subject-`+keptH+`"`) {
		t.Fatalf("Vault lacks the customers' keys:\n%s", dump)
	}
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		if strings.Contains(line, `"name":"subject-`) && (!strings.Contains(line, `"exportable":false`) || !strings.Contains(line, `"allow_plaintext_backup":false`)) {
			t.Errorf("a subject key is exportable or backed up in plaintext: %s", line)
		}
	}

	query := func(r run, extra ...string) testenv.CLIResult {
		qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
		defer qcancel()
		return tc.CLI(qctx, append([]string{"workflow", "query", "-w", r.WorkflowID, "-r", r.RunID, "--type", "status", "-o", "json"}, extra...)...)
	}
	if res := query(rGone); res.Err != nil {
		t.Fatalf("query before the shred: %s", res)
	}

	// Before the shred, a codec server shows both customers' data.
	before := testenv.StartCodecServer(t, csOpts)
	printed := cli("workflow", "show", "--detailed", "-w", rGone.WorkflowID, "-r", rGone.RunID, "--codec-endpoint", before.URL).Stdout
	for _, s := range gone.all() {
		if !strings.Contains(printed, s) {
			t.Errorf("temporal workflow show --detailed before the shred does not print %q:\n%s", s, printed)
		}
	}
	before.Process().Stop()

	// Shred, as the operator (root token), in the workflows' namespace.
	shredAt := time.Now()
	out, audit := operator("keys", "shred", "--namespace", "default", "--subject", gone.CustomerID, "--reference", "TICKET-123")
	if !strings.Contains(out, "shredded the key of data subject handle "+goneH+" in namespace default") {
		t.Fatalf("keys shred: stdout %s", out)
	}
	for _, want := range []string{`"msg":"data subject key shredded"`, `"handle":"` + goneH + `"`, `"reference":"TICKET-123"`, `"by":"dpo"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("keys shred's audit line lacks %s: %s", want, audit)
		}
	}
	if strings.Contains(strings.ToLower(out+audit), strings.ToLower(gone.CustomerID)) {
		t.Errorf("keys shred's output or audit line names the customer: %s%s", out, audit)
	}
	// The shredded customer's key is gone from Vault, a tombstone names
	// its handle, the other customer's key is there.
	if after := vaultDump(t, v); strings.Contains(after, `"name":"subject-`+goneH+`"`) || !strings.Contains(after, `"name":"tomb-subject-`+goneH+`-blocked"`) || !strings.Contains(after, `"name":"subject-`+keptH+`"`) {
		t.Errorf("after the shred, Vault's transit keys are:\n%s", after)
	}

	// A codec server started after the shred (a restarted server): the
	// CLI, as a person reads it, shows the kept customer's data and the
	// other's payloads as erased.
	after := testenv.StartCodecServer(t, csOpts)
	for _, view := range [][]string{
		{"workflow", "show", "-w", rGone.WorkflowID, "-r", rGone.RunID, "--codec-endpoint", after.URL},
		{"workflow", "show", "--detailed", "-w", rGone.WorkflowID, "-r", rGone.RunID, "--codec-endpoint", after.URL},
		{"workflow", "describe", "-w", rGone.WorkflowID, "-r", rGone.RunID, "--codec-endpoint", after.URL},
	} {
		printed := cli(view...).Stdout
		if !strings.Contains(printed, erasedText) {
			t.Errorf("temporal %s does not print %q:\n%s", strings.Join(view[:2], " "), erasedText, printed)
		}
		for _, s := range gone.all() {
			if strings.Contains(printed, s) {
				t.Errorf("temporal %s still prints %q of the shredded customer", strings.Join(view[:2], " "), s)
			}
		}
	}
	keptPrinted := cli("workflow", "show", "--detailed", "-w", rKept.WorkflowID, "-r", rKept.RunID, "--codec-endpoint", after.URL).Stdout
	for _, s := range kept.all() {
		if !strings.Contains(keptPrinted, s) {
			t.Errorf("temporal workflow show --detailed of the kept customer does not print %q:\n%s", s, keptPrinted)
		}
	}

	// Workers get the error, never stand-in data: a query replays the
	// completed workflow on the worker, which must decode its input; the
	// decode fails with codec.ErrErased, the workflow function never runs
	// and the SDK answers that the query handler is unknown
	// (docs/ERASURE.md). The worker may still hold the customer's data key
	// from before the shred for 1 minute (docs/ERASURE.md), not longer.
	const bound, poll = time.Minute, 2 * time.Second
	// A query that started within the minute may still be answered, however
	// long a loaded machine takes to answer it; one that started after it
	// must be refused.
	var last testenv.CLIResult
	for {
		started := time.Since(shredAt)
		last = query(rGone)
		if last.Err != nil {
			break
		}
		if started > bound {
			t.Fatalf("the worker still answers for the shredded customer to a query started %v after the shred:\n%s", started.Round(time.Millisecond), last)
		}
		time.Sleep(poll) // polling a real worker, with the deadline above
	}
	if !strings.Contains(last.Stderr+last.Stdout, "unknown queryType") {
		t.Errorf("the refused query does not fail as documented (unknown queryType):\n%s", last)
	}
	for _, s := range gone.all() {
		if strings.Contains(last.String(), s) {
			t.Errorf("the failed query shows %q", s)
		}
	}
	t.Logf("the worker refused the shredded customer's query %v after the shred: %s", time.Since(shredAt).Round(time.Second), strings.TrimSpace(last.Stderr))
	if res := query(rKept, "--codec-endpoint", after.URL); res.Err != nil || !strings.Contains(res.Stdout, kept.Name) {
		t.Errorf("query of the kept customer: %s", res)
	}

	// The Web UI: the shredded customer's page shows "erased", the kept
	// customer's page the plaintext.
	b := testenv.StartChromium(t)
	bctx, bcancel := context.WithTimeout(b.Ctx, 3*time.Minute)
	defer bcancel()
	for _, c := range []struct {
		name string
		r    run
		want []string
		not  []string
	}{
		{"shredded customer", rGone, []string{erasedText}, gone.all()},
		{"kept customer", rKept, []string{kept.Name, kept.Email, kept.Card}, []string{erasedText}},
	} {
		page := fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/history", tc.UIURL, url.PathEscape(c.r.WorkflowID), url.PathEscape(c.r.RunID))
		if err := chromedp.Do(bctx, chromedp.Navigate(page)); err != nil {
			t.Fatalf("open %s: %v", page, err)
		}
		wantJS, _ := json.Marshal(c.want)
		_, err := chromedp.Run(bctx, chromedp.Poll[bool](
			fmt.Sprintf(`(() => { const t = document.body ? document.body.innerText : ""; return %s.every(w => t.includes(w)); })()`, wantJS),
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
		shot := screenshot(t, b.Ctx, "erasure-"+strings.ReplaceAll(c.name, " ", "-")+".png")
		text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		if err != nil {
			t.Fatalf("%s: the page never showed %q: %v\nscreenshot: %s\npage text:\n%s", c.name, c.want, err, shot, text)
		}
		for _, s := range c.not {
			if strings.Contains(text, s) {
				t.Errorf("%s: the page shows %q", c.name, s)
			}
		}
		t.Logf("%s: screenshot %s", c.name, shot)
	}

	// Neither the codec servers' logs and audit lines nor Vault's audit
	// device name a customer: they carry handles.
	for _, cs := range []*testenv.CodecServer{uiCS, before, after} {
		cs.Process().Stop() // writes out buffered audit lines
		low := strings.ToLower(cs.Output())
		if !strings.Contains(low, `"msg":"audit"`) {
			t.Errorf("a codec server wrote no audit line; the check below proves nothing:\n%s", cs.Output())
		}
		for _, id := range []string{gone.CustomerID, kept.CustomerID} {
			if strings.Contains(low, strings.ToLower(id)) {
				t.Errorf("a codec server's log names customer %s:\n%s", id, cs.Output())
			}
		}
	}
	vaultLog, err := os.ReadFile(vaultAudit)
	if err != nil || !strings.Contains(string(vaultLog), "transit/hmac/subject-store") || !strings.Contains(string(vaultLog), "subject-"+goneH) {
		t.Fatalf("Vault's audit device logged no subject key use (%v); the check below proves nothing", err)
	}
	for _, id := range []string{gone.CustomerID, kept.CustomerID} {
		if strings.Contains(strings.ToLower(string(vaultLog)), strings.ToLower(id)) {
			t.Errorf("Vault's audit device log names customer %s", id)
		}
	}
}

// vaultDump lists the transit keys and returns their descriptions as JSON.
func vaultDump(t *testing.T, v *testenv.Vault) string {
	t.Helper()
	status, list, err := v.Request("LIST", "transit/keys", "", nil)
	if err != nil || status != 200 {
		t.Fatalf("list transit keys: %d %v", status, err)
	}
	var b strings.Builder
	data, _ := list["data"].(map[string]any)
	keys, _ := data["keys"].([]any)
	for _, k := range keys {
		_, desc, err := v.Request("GET", "transit/keys/"+fmt.Sprint(k), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(desc)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func jsonDoc(s string) any {
	var doc any
	json.Unmarshal([]byte(s), &doc)
	return doc
}

// person is the data subject of TestErasureForgetsThePerson: an e-mail
// address, as real applications use.
const person = "ada.smith@example.com"

// personRefs are the spellings of the person an output must not hold.
var personRefs = []string{"ada.smith", "ada%2esmith", "ada.smith@example.com"}

// assertForgets fails if what holds the person, in any case.
func assertForgets(t *testing.T, what, s string) {
	t.Helper()
	low := strings.ToLower(s)
	for _, ref := range personRefs {
		if strings.Contains(low, ref) {
			i := strings.Index(low, ref)
			t.Errorf("%s holds the subject ID %q: ...%s...", what, ref, s[max(0, i-80):min(len(s), i+80)])
			return
		}
	}
}

// runCodecServerCmd runs bin/codec-server with only env (and PATH) in its
// environment.
func runCodecServerCmd(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(t), "bin", "codec-server"), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// TestErasureForgetsThePerson: a worker seals for ada.smith@example.com in
// two namespaces through codecenv.Load with the store set only in the
// environment, for the Vault store and the dir store. No payload byte or
// metadata value, no store file name or content, no codec server log or
// audit line, no Vault key name and no line of Vault's file audit device
// holds the subject ID; a shred in orders leaves billing readable; a seal
// after the shred fails until the subject is re-admitted; a server on a
// store that was never initialised refuses to start; a payload naming a
// subject key that never existed fails as unknown, not erased.
func TestErasureForgetsThePerson(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	vaultAudit := filepath.Join(t.TempDir(), "vault-audit.log")
	v.Write(t, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": vaultAudit}})

	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "subjects")
	stores := []struct {
		name string
		env  []string
	}{
		{"vault", []string{"VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.Token, "CODEC_SERVER_VAULT_KEY=temporal", "CODEC_SERVER_SUBJECT_STORE=vault"}},
		{"dir", []string{"CODEC_SERVER_KEYS_FILE=" + keys, "CODEC_SERVER_SUBJECT_STORE=dir", "CODEC_SERVER_SUBJECT_DIR=" + folder}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) {
				for _, kv := range st.env {
					if name, val, _ := strings.Cut(kv, "="); name == k {
						return val, true
					}
				}
				return "", false
			}
			if st.name == "dir" {
				if err := os.Mkdir(folder, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			// A server on a store that was never initialised (an empty
			// folder, a mount without the store key) refuses to start,
			// saying so in one line that names the command.
			_, errOut, code := runCodecServerCmd(t, st.env, "--listen", "127.0.0.1:0")
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if last := lines[len(lines)-1]; code == 0 || !strings.Contains(last, "not an initialised data subject key store") || !strings.Contains(last, "codec-server keys init-subject-store") {
				t.Fatalf("server on an uninitialised %s store: exit %d, stderr:\n%s", st.name, code, errOut)
			}
			if out, errOut, code := runCodecServerCmd(t, st.env, "keys", "init-subject-store"); code != 0 {
				t.Fatalf("keys init-subject-store: exit %d\n%s%s", code, out, errOut)
			}

			subjectOf := func(sc converter.SerializationContext) string {
				if w, ok := sc.(converter.WorkflowSerializationContext); ok {
					id, _ := strings.CutPrefix(w.WorkflowID, "onboard-")
					return id
				}
				return ""
			}
			load := func() *codecenv.Env {
				o := codecenv.Options{LookupEnv: lookup, Codec: codec.Options{Subject: subjectOf}}
				o.Temporal.DisableFile = true
				e, err := codecenv.Load(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
				return e
			}
			worker := load()
			seal := func(e *codecenv.Env, ns, text string) ([]*commonpb.Payload, error) {
				return e.Codec.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: ns, WorkflowID: "onboard-" + person}).Encode(
					[]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(strconv.Quote(text))}})
			}
			orders, err := seal(worker, "orders", "order of Ada")
			if err != nil {
				t.Fatal(err)
			}
			billing, err := seal(worker, "billing", "invoice of Ada")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range append(orders, billing...) {
				assertForgets(t, "payload data", string(p.Data))
				for k, val := range p.Metadata {
					assertForgets(t, "payload metadata "+k, string(val))
				}
			}

			csOpts := testenv.CodecServerOptions{Args: []string{"--log-format", "json"}, Env: st.env}
			cs := testenv.StartCodecServer(t, csOpts)
			var logs []string // every codec server's log and audit lines
			decode := func(ns string, ps ...*commonpb.Payload) (int, string, string) {
				t.Helper()
				body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
				req, _ := http.NewRequest("POST", cs.URL+"/decode", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Namespace", ns)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("X-Erased-Payloads"), string(b)
			}
			if status, _, body := decode("orders", orders...); status != 200 || !strings.Contains(body, base64.StdEncoding.EncodeToString([]byte(`"order of Ada"`))) {
				t.Fatalf("decode in orders before the shred: %d %s", status, body)
			}
			// A server that cached the key may use it for SubjectKeyMaxAge
			// after the shred; the checks below use one started after it.
			cs.Process().Stop()
			logs = append(logs, cs.Output())

			// Shred in orders, as the operator; the audit line names the
			// handle and the ticket, never the person.
			auditFile := filepath.Join(t.TempDir(), "shred-audit.jsonl")
			shredOut, shredErr, code := runCodecServerCmd(t, append(st.env, "USER=dpo"), "keys", "shred", "--namespace", "orders", "--subject", person, "--reference", "TICKET-123", "--audit-log", auditFile)
			if code != 0 {
				t.Fatalf("keys shred: exit %d\n%s%s", code, shredOut, shredErr)
			}
			shredAudit, _ := os.ReadFile(auditFile)
			if !strings.Contains(string(shredAudit), `"reference":"TICKET-123"`) || !strings.Contains(string(shredAudit), `"namespace":"orders"`) {
				t.Errorf("shred audit line: %s", shredAudit)
			}
			assertForgets(t, "keys shred's output", shredOut+shredErr)
			assertForgets(t, "keys shred's audit line", string(shredAudit))

			cs = testenv.StartCodecServer(t, csOpts)
			// orders is erased, billing is not.
			status, erased, body := decode("orders", orders...)
			if status != 200 || erased != "1" || !strings.Contains(body, base64.StdEncoding.EncodeToString([]byte(strconv.Quote(erasedText)))) {
				t.Errorf("decode in orders after the shred: %d, %s erased, %s", status, erased, body)
			}
			if status, erased, body := decode("billing", billing...); status != 200 || erased != "" || !strings.Contains(body, base64.StdEncoding.EncodeToString([]byte(`"invoice of Ada"`))) {
				t.Errorf("decode in billing after the shred in orders: %d, %q erased, %s", status, erased, body)
			}

			// A seal after the shred fails (a new worker: nothing cached)
			// until the person is re-admitted; billing seals as before.
			w2 := load()
			if _, err := seal(w2, "orders", "new order"); !errors.Is(err, codec.ErrErased) {
				t.Errorf("seal in orders after the shred: %v, want codec.ErrErased", err)
			} else {
				assertForgets(t, "the seal error", err.Error())
			}
			if _, err := seal(w2, "billing", "new invoice"); err != nil {
				t.Errorf("seal in billing after the shred in orders: %v", err)
			}
			if out, errOut, code := runCodecServerCmd(t, st.env, "keys", "readmit", "--namespace", "orders", "--subject", person, "--reference", "TICKET-124"); code != 0 {
				t.Fatalf("keys readmit: exit %d\n%s%s", code, out, errOut)
			}
			again, err := seal(load(), "orders", "order after re-admission")
			if err != nil {
				t.Fatalf("seal in orders after the re-admission: %v", err)
			}
			if string(again[0].Metadata["encryption-key-id"]) == string(orders[0].Metadata["encryption-key-id"]) {
				t.Error("the re-admitted person got the shredded key back")
			}
			if status, erased, _ := decode("orders", orders...); status != 200 || erased != "1" {
				t.Errorf("the shredded payload after the re-admission: %d, %q erased; want still erased", status, erased)
			}

			// A payload naming a subject key that never existed fails as
			// unknown, not as erased.
			forged := &commonpb.Payload{Metadata: map[string][]byte{}, Data: billing[0].Data}
			for k, val := range billing[0].Metadata {
				forged.Metadata[k] = val
			}
			forged.Metadata["encryption-key-id"] = []byte("subject/" + st.name + "/" + strings.Repeat("0f", 16) + "/0011223344556677")
			if status, erased, body := decode("billing", forged); status != 422 || erased != "" || !strings.Contains(body, "sealed under a key this server does not hold") {
				t.Errorf("a payload naming a subject key that never existed: %d, %q erased, %s; want 422 saying the key is not held (unknown_key)", status, erased, body)
			}

			// Nothing the store, the server or Vault keeps names the person.
			cs.Process().Stop() // writes out the buffered audit lines
			for _, l := range append(logs, cs.Output()) {
				assertForgets(t, "the codec server's log and audit lines", l)
			}
			if !strings.Contains(cs.Output(), `"msg":"erased payloads"`) || !strings.Contains(cs.Output(), `"msg":"audit"`) {
				t.Errorf("the codec server logged no erased payloads or no audit line; the check above proves nothing (%d bytes):\n%s", len(cs.Output()), cs.Output())
			}
			if st.name == "dir" {
				ents, _ := os.ReadDir(folder)
				for _, e := range ents {
					b, _ := os.ReadFile(filepath.Join(folder, e.Name()))
					assertForgets(t, "store file name "+e.Name(), e.Name())
					assertForgets(t, "store file "+e.Name(), string(b))
				}
			} else {
				_, list, err := v.Request("LIST", "transit/keys", "", nil)
				if err != nil {
					t.Fatal(err)
				}
				names, _ := json.Marshal(list)
				assertForgets(t, "Vault's transit key names", string(names))
			}
		})
	}
	audit, err := os.ReadFile(vaultAudit)
	if err != nil || len(audit) == 0 {
		t.Fatalf("Vault's file audit device wrote nothing: %v", err)
	}
	if !strings.Contains(string(audit), "transit/hmac/subject-store") {
		t.Fatalf("Vault's audit log has no handle derivation; the test would prove nothing:\n%.2000s", audit)
	}
	for i, line := range strings.Split(string(audit), "\n") {
		assertForgets(t, fmt.Sprintf("Vault's audit log line %d", i+1), line)
	}
}
