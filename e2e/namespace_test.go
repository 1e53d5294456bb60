package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestNonDefaultNamespace runs the examples in the namespace "payments"
// (TEMPORAL_NAMESPACE, as a user sets it) on a dev server started with
// --namespace payments. Every payload is sealed for payments, the memo
// too (the examples' codec takes its default namespace from the client's
// settings; exampleenv's tests pin that). The CLI (with -n and
// with the namespace in the endpoint's path) and the Web UI then decode the
// whole history through the codec server, and the audit log shows every
// decode in payments answered 200: nothing was sealed for another
// namespace.
func TestNonDefaultNamespace(t *testing.T) {
	t.Parallel()
	const ns = "payments"
	keys := newKeyFile(t)
	uiPort := testenv.FreePort(t)
	uiOrigin := fmt.Sprintf("http://127.0.0.1:%d", uiPort)
	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: []string{
		"--keys-file", keys, "--cors-origin", uiOrigin, "--refuse-v1",
	}})
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{UIPort: uiPort, UICodecEndpoint: cs.URL, Namespaces: []string{ns}})
	e := env{temporal: tc, keyArgs: []string{"--keys-file", keys}, namespace: ns}
	s := newSecrets(t)
	startWorker(t, e, "tq-namespace")
	r := runStarter(t, e, "tq-namespace", s)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Temporal stored only ciphertext, every payload sealed for payments.
	raw := tc.CLI(ctx, "workflow", "show", "-n", ns, "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if raw.Err != nil {
		t.Fatal(raw)
	}
	assertNoPlaintext(t, "workflow show without codec", raw.Stdout, s, 5)
	assertSealedFor(t, raw.Stdout, ns)
	desc := tc.CLI(ctx, "workflow", "describe", "-n", ns, "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if desc.Err != nil {
		t.Fatal(desc)
	}
	assertSealedFor(t, desc.Stdout, ns)

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"-n", []string{"-n", ns, "--codec-endpoint", cs.URL}},
		{"the namespace in the endpoint's path", []string{"-n", ns, "--codec-endpoint", cs.URL + "/" + ns}},
	} {
		t.Run("CLI "+tt.name, func(t *testing.T) {
			show := tc.CLI(ctx, append([]string{"workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "--detailed"}, tt.args...)...)
			if show.Err != nil {
				t.Fatalf("%s\ncodec server:\n%s", show, cs.Output())
			}
			assertLines(t, "workflow show --detailed", show.Stdout, s.detailedLines()...)
			d := tc.CLI(ctx, append([]string{"workflow", "describe", "-w", r.WorkflowID, "-r", r.RunID}, tt.args...)...)
			if d.Err != nil {
				t.Fatalf("%s\ncodec server:\n%s", d, cs.Output())
			}
			assertShown(t, "workflow describe", d.Stdout, s.describedMemo()...)
		})
	}

	t.Run("Web UI", func(t *testing.T) {
		b := testenv.StartChromium(t)
		page := fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history", tc.UIURL, ns, url.PathEscape(r.WorkflowID), url.PathEscape(r.RunID))
		uctx, ucancel := context.WithTimeout(b.Ctx, 2*time.Minute)
		defer ucancel()
		if err := chromedp.Do(uctx, chromedp.Navigate(page)); err != nil {
			t.Fatalf("open %s: %v", page, err)
		}
		want := []string{s.Name, s.Email, s.Card, s.Address, "Welcome aboard, " + s.Name + "!", s.Approver, s.Note}
		wantJS, _ := json.Marshal(want)
		_, err := chromedp.Run(uctx, chromedp.Poll[bool](
			fmt.Sprintf(`(() => { const t = document.body ? document.body.innerText : ""; return %s.every(w => t.includes(w)); })()`, wantJS),
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
		shot := screenshot(t, b.Ctx, "webui-namespace-payments.png")
		if err != nil {
			text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("the page never showed the decoded payloads: %v\nscreenshot: %s\npage text:\n%s\ncodec server:\n%s", err, shot, text, cs.Output())
		}
		memoWant, _ := json.Marshal([]string{`"customer": ` + jsString(s.Name), `"email": ` + jsString(s.Email)})
		if _, err := chromedp.Run(uctx, chromedp.Evaluate[bool](`(() => { const el = [...document.querySelectorAll('a,button,[role=tab]')].find(e => e.innerText.trim() === 'Memo'); if (el) el.click(); return !!el; })()`)); err != nil {
			t.Fatalf("click Memo: %v", err)
		}
		memoText := fmt.Sprintf(`(() => { const t = document.body ? document.body.innerText : ""; return location.pathname.endsWith("/memo") && %s.every(w => t.includes(w)); })()`, memoWant)
		if _, err := chromedp.Run(uctx, chromedp.Poll[bool](memoText, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Errorf("the Memo tab never showed the decoded memo: %v (screenshot %s)", err, screenshot(t, b.Ctx, "webui-namespace-memo-failed.png"))
		}
	})

	// Every decode (CLI and browser) was for payments and succeeded: the
	// CLI with -n and the UI send X-Namespace: payments, the path form
	// names it, and nothing in the history was sealed for another namespace.
	// Audit lines are flushed in batches: wait until there is one for every
	// decode request the server counted.
	lines, err := waitAuditedDecodes(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	decodes := 0
	for _, a := range lines {
		if a["route"] != "decode" {
			continue
		}
		decodes++
		if a["namespace"] != ns || a["status"] != 200.0 {
			t.Errorf("audit line of a decode: %v", a)
		}
	}
	if decodes == 0 {
		t.Errorf("no decode in the audit log:\n%s", cs.Output())
	}
}

// assertSealedFor checks that every payload in a CLI JSON output (without
// a codec) is envelope/v2 sealed for namespace.
func assertSealedFor(t *testing.T, out, namespace string) {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	ps := payloads(doc)
	if len(ps) == 0 {
		t.Fatalf("no payloads in:\n%s", out)
	}
	for i, p := range ps {
		md := p["metadata"].(map[string]any)
		if f, n := string(b64(md["encryption-format"])), string(b64(md["encryption-namespace"])); f != "envelope/v2" || n != namespace {
			t.Errorf("payload %d: format %q sealed for %q, want envelope/v2 for %q", i, f, n, namespace)
		}
	}
}
