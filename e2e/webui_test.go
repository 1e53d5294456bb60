package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// codecCall is one request the browser made to the codec server.
type codecCall struct {
	Method, URL string
	Status      int64  // 0 until answered
	Failure     string // the browser's error, e.g. a CORS failure
}

// codecCalls records the browser's requests to one origin from the
// DevTools network events, preflights included.
type codecCalls struct {
	origin string
	mu     sync.Mutex
	byID   map[network.RequestID]*codecCall
	order  []network.RequestID
}

func (c *codecCalls) event(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		if !strings.HasPrefix(e.Request.URL, c.origin) {
			return
		}
		if _, ok := c.byID[e.RequestID]; !ok {
			c.order = append(c.order, e.RequestID)
		}
		c.byID[e.RequestID] = &codecCall{Method: e.Request.Method, URL: e.Request.URL}
	case *network.EventResponseReceived:
		if call := c.byID[e.RequestID]; call != nil {
			call.Status = e.Response.Status
		}
	case *network.EventLoadingFailed:
		if call := c.byID[e.RequestID]; call != nil {
			call.Failure = e.ErrorText
			if e.CorsErrorStatus != nil {
				call.Failure += fmt.Sprintf(" (CORS: %s %s)", e.CorsErrorStatus.CorsError, e.CorsErrorStatus.FailedParameter)
			}
		}
	}
}

func (c *codecCalls) list() []codecCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]codecCall, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, *c.byID[id])
	}
	return out
}

// TestWebUIShowsDecodedPayloads opens the workflow's page of the dev
// server's Web UI in headless Chromium. The UI is configured with
// --ui-codec-endpoint pointing at the codec server on another origin, so the
// browser makes a CORS preflight and then POST /decode; the page must show
// the decoded input and result.
//
// The Web UI sends an Authorization header to a codec server only when the
// endpoint is https and "pass access token" is on (and the UI has its own
// login), so for this browser test the codec server runs on loopback with
// --insecure-no-auth. The JWT path is covered with the CLI in
// TestCLIDecodesThroughCodecServer.
func TestWebUIShowsDecodedPayloads(t *testing.T) {
	t.Parallel()
	keys := newKeyFile(t)
	uiPort := testenv.FreePort(t)
	uiOrigin := fmt.Sprintf("http://127.0.0.1:%d", uiPort)
	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: []string{
		"--keys-file", keys, "--cors-origin", uiOrigin,
	}})
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{UIPort: uiPort, UICodecEndpoint: cs.URL})
	if tc.UIURL != uiOrigin {
		t.Fatalf("UI at %s, want %s", tc.UIURL, uiOrigin)
	}
	e := env{temporal: tc, keyArgs: []string{"--keys-file", keys}}
	s := newSecrets(t)
	startWorker(t, e, "tq-webui")
	r := runStarter(t, e, "tq-webui", s)

	b := testenv.StartChromium(t)
	calls := &codecCalls{origin: cs.URL + "/", byID: make(map[network.RequestID]*codecCall)}
	if err := chromedp.Listen(b.Ctx, calls.event); err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/history", tc.UIURL, url.PathEscape(r.WorkflowID), url.PathEscape(r.RunID))
	ctx, cancel := context.WithTimeout(b.Ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}

	// The input panel shows the customer record, the result panel the
	// welcome and the approval from the signal.
	want := []string{s.Name, s.Email, s.Card, s.Address, "Welcome aboard, " + s.Name + "!", s.Approver, s.Note}
	wantJS, _ := json.Marshal(want)
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](
		fmt.Sprintf(`(() => { const t = document.body ? document.body.innerText : ""; return %s.every(w => t.includes(w)); })()`, wantJS),
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
	shot := screenshot(t, b.Ctx, "webui-workflow-history.png")
	if err != nil {
		text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("the page never showed the decoded payloads: %v\ncodec calls: %+v\nscreenshot: %s\npage text:\n%s", err, calls.list(), shot, text)
	}
	t.Logf("screenshot: %s", shot)

	var preflight, decode int
	for _, c := range calls.list() {
		if c.Failure != "" {
			t.Errorf("browser call %s %s failed: %s", c.Method, c.URL, c.Failure)
		}
		switch {
		case c.Method == "OPTIONS" && c.URL == cs.URL+"/decode":
			preflight++
			if c.Status < 200 || c.Status > 299 {
				t.Errorf("CORS preflight answered %d, want 2xx", c.Status)
			}
		case c.Method == "POST" && c.URL == cs.URL+"/decode":
			decode++
			if c.Status != 200 {
				t.Errorf("POST /decode answered %d, want 200", c.Status)
			}
		}
	}
	if preflight == 0 || decode == 0 {
		t.Errorf("the browser made %d preflights and %d decodes, want at least one of each: %+v", preflight, decode, calls.list())
	}

	// The memo is sealed too; the Memo tab shows it decoded, under its
	// lower-case keys (the input panel has "Email", not "email").
	memoWant, _ := json.Marshal([]string{`"customer": ` + jsString(s.Name), `"email": ` + jsString(s.Email)})
	memoText := fmt.Sprintf(`(() => { const t = document.body ? document.body.innerText : ""; return location.pathname.endsWith("/memo") && %s.every(w => t.includes(w)); })()`, memoWant)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const el = [...document.querySelectorAll('a,button,[role=tab]')].find(e => e.innerText.trim() === 'Memo'); if (el) el.click(); return !!el; })()`)); err != nil {
		t.Fatalf("click Memo: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](memoText, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Errorf("the Memo tab never showed the decoded memo: %v (screenshot %s)", err, screenshot(t, b.Ctx, "webui-memo-failed.png"))
	} else {
		t.Logf("memo screenshot: %s", screenshot(t, b.Ctx, "webui-workflow-memo.png"))
	}

	// Without the codec server the same page has only ciphertext: the
	// plaintext above came from the codec server, not from Temporal.
	cs.Process().Stop()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("reopen %s: %v", page, err)
	}
	sealed := `(() => { const t = document.body ? document.body.innerText : ""; return t.includes("Input") && (t.includes("binary/encrypted") || t.includes("YmluYXJ5L2VuY3J5cHRlZA==")); })()`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](sealed, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("without the codec server the page never showed the sealed payloads: %v\npage text:\n%s", err, text)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range s.all() {
		if strings.Contains(text, secret) {
			t.Errorf("without the codec server the page still shows %q", secret)
		}
	}
	t.Logf("sealed screenshot: %s", screenshot(t, b.Ctx, "webui-without-codec-server.png"))
}

// screenshot saves a PNG of the whole page under artifacts/ and returns
// its path, or a note why it could not.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "none: " + err.Error()
	}
	p := testenv.ArtifactPath(t, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		return "none: " + err.Error()
	}
	return p
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
