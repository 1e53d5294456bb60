package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
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
`

// TestErasureByKey is the done-when of erasure by key: two customers'
// workflows sealed under their own Vault transit keys; one customer's key
// is shredded with `codec-server keys shred`; then the CLI and the Web UI
// (through a codec server started after the shred) show the other
// customer's data and the shredded customer's payloads as erased, while
// the raw history and a dump of the Vault data taken before the shred
// never held plaintext.
func TestErasureByKey(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	v.WritePolicy(t, "envelope", testenv.TransitPolicy("temporal")+subjectPolicy)
	token := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"envelope"}, Renewable: true, TTL: "1h"})
	keyArgs := []string{"--vault-addr", v.Addr, "--vault-key", "temporal", "--subject-store", "vault"}
	keyEnv := []string{"VAULT_TOKEN=" + token}

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
	show := func(r run, extra ...string) testenv.CLIResult {
		t.Helper()
		res := tc.CLI(ctx, append([]string{"workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json"}, extra...)...)
		if res.Err != nil {
			t.Fatalf("%s", res)
		}
		return res
	}

	// The raw history: only ciphertext, every payload under its
	// customer's own key.
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
			if !strings.HasPrefix(id, "subject/vault/"+c.s.CustomerID+"/") {
				t.Errorf("%s: payload %d has key ID %q, want the customer's key subject/vault/%s/...", c.s.CustomerID, i, id, c.s.CustomerID)
			}
		}
		desc := tc.CLI(ctx, "workflow", "describe", "-w", c.r.WorkflowID, "-r", c.r.RunID, "-o", "json")
		if desc.Err != nil {
			t.Fatal(desc)
		}
		assertNoPlaintext(t, "raw memo of "+c.s.CustomerID, desc.Stdout, c.s, 2)
	}

	// A copy of what Vault holds before the shred: every transit key's
	// description. The dev server keeps its storage in memory, so this is
	// what a token can read, not a storage snapshot (docs/ERASURE.md).
	dump := vaultDump(t, v)
	for _, s := range append(gone.all(), kept.all()...) {
		if strings.Contains(dump, s) {
			t.Errorf("the Vault dump holds plaintext %q", s)
		}
	}
	if !strings.Contains(dump, "subject-"+gone.CustomerID) || !strings.Contains(dump, "subject-"+kept.CustomerID) {
		t.Fatalf("the Vault dump lacks the customers' keys:\n%s", dump)
	}
	// No subject key can be copied out of Vault (a copy no shred reaches).
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
	assertPlaintext(t, "CLI before the shred", show(rGone, "--codec-endpoint", before.URL).Stdout, gone)
	before.Process().Stop()

	// Shred, as the operator (root token).
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(t), "bin", "codec-server"), "keys", "shred", "--subject", gone.CustomerID,
		"--subject-store", "vault", "--vault-addr", v.Addr, "--vault-key", "temporal")
	cmd.Env = append(cleanEnv(os.Environ()), "VAULT_TOKEN="+v.Token, "USER=dpo")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	shredAt := time.Now()
	if err := cmd.Run(); err != nil || !strings.Contains(stdout.String(), "shredded the key of data subject "+gone.CustomerID) {
		t.Fatalf("keys shred: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"data subject key shredded"`) || !strings.Contains(stderr.String(), `"subject_id":"`+gone.CustomerID+`"`) {
		t.Errorf("keys shred wrote no audit line: %s", stderr.String())
	}
	// The shredded customer's key is gone from Vault, the other's is not.
	if after := vaultDump(t, v); strings.Contains(after, `"name":"subject-`+gone.CustomerID+`"`) || !strings.Contains(after, `"name":"subject-`+kept.CustomerID+`"`) {
		t.Errorf("after the shred, Vault's transit keys are:\n%s", after)
	}

	// A codec server started after the shred (a restarted server): the CLI
	// shows the kept customer's data and the other's payloads as erased.
	after := testenv.StartCodecServer(t, csOpts)
	assertPlaintext(t, "CLI after the shred, kept customer", show(rKept, "--codec-endpoint", after.URL).Stdout, kept)
	goneOut := show(rGone, "--codec-endpoint", after.URL).Stdout
	var goneDoc any
	if err := json.Unmarshal([]byte(goneOut), &goneDoc); err != nil {
		t.Fatal(err)
	}
	goneAll := goneOut + "\n" + strings.Join(decodedStrings(goneDoc), "\n")
	if !strings.Contains(goneAll, erasedText) {
		t.Errorf("CLI after the shred does not show the erased payloads as erased:\n%s", goneOut)
	}
	for _, s := range gone.all() {
		if strings.Contains(goneAll, s) {
			t.Errorf("CLI after the shred still shows %q of the shredded customer", s)
		}
	}
	if !strings.Contains(after.Output(), `"msg":"erased payloads"`) {
		t.Errorf("the codec server logged no erased payloads:\n%s", after.Output())
	}

	// Workers get the error, never stand-in data: a query replays the
	// completed workflow on the worker, which must decode its input; the
	// decode fails with codec.ErrErased, the workflow function never runs
	// and the SDK answers that the query handler is unknown. The worker
	// may still hold the customer's data key from before the shred for
	// codec.DefaultSubjectKeyMaxAge (1 minute), not longer. The kept
	// customer's query keeps working.
	var last testenv.CLIResult
	for {
		last = query(rGone)
		if last.Err != nil {
			break
		}
		if time.Since(shredAt) > codec.DefaultSubjectKeyMaxAge+30*time.Second {
			t.Fatalf("the worker still answers for the shredded customer %v after the shred:\n%s", time.Since(shredAt), last)
		}
		time.Sleep(2 * time.Second) // polling a real worker, with the deadline above
	}
	for _, s := range gone.all() {
		if strings.Contains(last.String(), s) {
			t.Errorf("the failed query shows %q", s)
		}
	}
	t.Logf("the worker refused the shredded customer's query %v after the shred: %s", time.Since(shredAt).Round(time.Second), strings.TrimSpace(last.Stderr))
	if res := query(rKept, "--codec-endpoint", after.URL); res.Err != nil || !strings.Contains(res.Stdout+strings.Join(decodedStrings(jsonDoc(res.Stdout)), ""), kept.Name) {
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
