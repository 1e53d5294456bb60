package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestWebUISingleSignOn runs the set-up production teams run: the Temporal
// UI server (the real github.com/temporalio/ui-server/v2 v2.42.1) behind
// OpenID Connect sign-in, in front of a Temporal dev server, with the codec
// server on HTTPS checking the signed-in user's token against the
// provider's JWKS (found through --oidc-issuer discovery).
//
// Headless Chromium signs in on the provider's login page (zitadel/oidc's
// example OpenID provider, internal/oidcprovider): a user with
// "default:read" sees the workflow's input in plaintext; a user without it
// sees it still encrypted, and the codec server's audit log names that user
// with a 403. Then the provider rotates its signing key: a token with the
// new kid still decodes (the codec server refreshes its JWKS on an unknown
// kid).
//
// The browser trusts the codec server's certificate, issued by a CA made
// for this test, through Chromium's --ignore-certificate-errors-spki-list
// (the certificate's public key is pinned); nothing is added to any system
// trust store.
func TestWebUISingleSignOn(t *testing.T) {
	t.Parallel()
	keys := newKeyFile(t)
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{}) // headless: the UI server below is the UI
	uiPort := testenv.FreePort(t)
	uiOrigin := fmt.Sprintf("http://127.0.0.1:%d", uiPort)
	callback := uiOrigin + "/auth/sso/callback"

	clientSecret := ssoRandHex(t, 16)
	reader := testenv.OIDCUser{
		ID: "reader-" + ssoRandHex(t, 4), Username: "ada", Password: ssoRandHex(t, 8),
		Email: "ada@example.com", Name: "Ada Reader", Permissions: []string{"default:read"},
	}
	outsider := testenv.OIDCUser{
		ID: "outsider-" + ssoRandHex(t, 4), Username: "mallory", Password: ssoRandHex(t, 8),
		Email: "mallory@example.com", Name: "Mallory Outsider", Permissions: []string{"billing:read"},
	}
	op := testenv.StartOIDCProvider(t, testenv.OIDCProviderOptions{
		Clients: []testenv.OIDCClient{{ID: "temporal-ui", Secret: clientSecret, RedirectURIs: []string{callback}}},
		Users:   []testenv.OIDCUser{reader, outsider},
	})

	ca := testenv.NewTestCA(t)
	cert := ca.Issue(t)
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	cs := testenv.StartHTTPSCodecServer(t, testenv.CodecServerOptions{Args: []string{
		"--keys-file", keys,
		"--oidc-issuer", op.Issuer,
		"--jwt-audience", "temporal-ui",
		"--cors-origin", uiOrigin,
		"--audit-log", auditLog,
	}}, ca, cert)

	ui := testenv.StartUIServer(t, testenv.UIServerOptions{
		TemporalAddress: tc.Address,
		Port:            uiPort,
		Env: []string{
			"TEMPORAL_AUTH_ENABLED=true",
			"TEMPORAL_AUTH_PROVIDER_URL=" + op.Issuer,
			"TEMPORAL_AUTH_CLIENT_ID=temporal-ui",
			"TEMPORAL_AUTH_CLIENT_SECRET=" + clientSecret,
			"TEMPORAL_AUTH_CALLBACK_URL=" + callback,
			"TEMPORAL_AUTH_SCOPES=openid,profile,email",
			"TEMPORAL_CODEC_ENDPOINT=" + cs.URL,
			"TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true",
			"TEMPORAL_CORS_ORIGINS=" + uiOrigin,
			// The UI is served over plain http in this test; its CSRF
			// cookie must then not be Secure.
			"TEMPORAL_CSRF_COOKIE_INSECURE=true",
		},
	})
	if ui.URL != uiOrigin {
		t.Fatalf("UI at %s, want %s", ui.URL, uiOrigin)
	}

	e := env{temporal: tc, keyArgs: []string{"--keys-file", keys}}
	s := newSecrets(t)
	startWorker(t, e, "tq-sso")
	r := runStarter(t, e, "tq-sso", s)
	page := fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/history", ui.URL, url.PathEscape(r.WorkflowID), url.PathEscape(r.RunID))
	inputSecrets := []string{s.Name, s.Email, s.Card, s.Address}

	site := ssoSite{issuer: op.Issuer, ui: ui.URL, codec: cs.URL}
	b := testenv.StartChromiumWithFlags(t, map[string]any{"ignore-certificate-errors-spki-list": cert.SPKIHash})

	// The reader sees plaintext, and the token the UI sent is the access
	// token.
	firstKid := op.KeyIDs()[0]
	rd := ssoSignIn(t, b, site, reader, page)
	ssoWaitForText(t, rd, inputSecrets, "sso-reader-plaintext.png")
	observeToken(t, rd.bearer, reader, firstKid)
	if st := rd.calls.postDecodeStatuses(); !slices.Contains(st, 200) {
		t.Errorf("the reader's POST /decode statuses %v, want a 200", st)
	}

	// The outsider, whose token lacks default:read, sees ciphertext only.
	out := ssoSignIn(t, b, site, outsider, page)
	sealed := `(() => { const t = document.body ? document.body.innerText : ""; return t.includes("Input") && (t.includes("binary/encrypted") || t.includes("YmluYXJ5L2VuY3J5cHRlZA==")); })()`
	if err := pollAcrossNavigations(out.ctx, sealed, 90*time.Second); err != nil {
		text, _ := chromedp.Run(out.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("the outsider's page never showed the sealed payload: %v\ncodec calls: %+v\nscreenshot: %s\npage text:\n%s", err, out.calls.list(), screenshot(t, out.ctx, "sso-outsider-failed.png"), text)
	}
	if err := waitPostDecodeStatus(out.ctx, out.calls, 403); err != nil {
		t.Errorf("the outsider's decode: %v; calls: %+v", err, out.calls.list())
	}
	// The 403 is for the permission, not for a missing or broken token.
	observeToken(t, out.bearer, outsider, firstKid)
	html, err := chromedp.Run(out.ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range s.all() {
		if strings.Contains(html, secret) {
			t.Errorf("the outsider's page shows %q", secret)
		}
	}
	t.Logf("outsider screenshot: %s", screenshot(t, out.ctx, "sso-outsider-sealed.png"))
	if line, err := waitAuditFileLine(auditLog, outsider.ID, 403); err != nil {
		t.Errorf("audit log: %v", err)
	} else {
		t.Logf("audit line of the outsider: %s", line)
	}
	if _, err := waitAuditFileLine(auditLog, reader.ID, 200); err != nil {
		t.Errorf("audit log: %v", err)
	}

	// Key rotation: the provider signs with a new key; the reader signs in
	// again and the codec server, seeing an unknown kid, refreshes the JWKS.
	newKid, err := op.RotateKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if newKid == firstKid {
		t.Fatalf("rotation kept kid %s", newKid)
	}
	again := ssoSignIn(t, b, site, reader, page)
	ssoWaitForText(t, again, inputSecrets, "sso-reader-after-key-rotation.png")
	observeToken(t, again.bearer, reader, newKid)
	if err := cs.WaitOutput(context.Background(), "forced=true", 30*time.Second); err != nil {
		t.Errorf("the codec server did not log a forced JWKS refresh: %v", err)
	}
}

// ssoSite holds the origins of the provider, the UI and the codec server.
type ssoSite struct{ issuer, ui, codec string }

// ssoSession is one user's browser context (own cookies and storage).
type ssoSession struct {
	ctx    context.Context
	calls  *codecCalls
	bearer *bearerTokens
}

// ssoSignIn opens page in a new browser context, signs user in on the
// provider's login page when the UI asks for it, and opens page again.
func ssoSignIn(t *testing.T, b *testenv.Browser, site ssoSite, user testenv.OIDCUser, page string) ssoSession {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(b.Ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(tab, 4*time.Minute)
	t.Cleanup(cancel)
	calls := &codecCalls{origin: site.codec + "/", byID: make(map[network.RequestID]*codecCall)}
	if err := chromedp.Do(ctx); err != nil { // create the tab
		t.Fatal(err)
	}
	bearer := &bearerTokens{url: site.codec + "/decode"}
	for _, fn := range []func(any){calls.event, bearer.event} {
		if err := chromedp.Listen(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	fail := func(what string, err error) {
		t.Helper()
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText : "")`))
		t.Fatalf("sign in as %s: %s: %v\nscreenshot: %s\npage:\n%s", user.Username, what, err, screenshot(t, ctx, "sso-signin-failed-"+user.Username+".png"), text)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		fail("open "+page, err)
	}
	// The UI's login page has a button that starts the OIDC flow; the
	// provider's login page has the username field.
	clickSSO := fmt.Sprintf(`(() => {
		if (location.origin === %s) return document.querySelector("#username") !== null;
		const b = [...document.querySelectorAll("button, a")].find(e => /sso|log ?in|sign ?in/i.test(e.innerText || ""));
		if (b) b.click();
		return false;
	})()`, jsString(site.issuer))
	if err := pollAcrossNavigations(ctx, clickSSO, 60*time.Second); err != nil {
		fail("reach the provider's login page", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), user.Username),
		chromedp.SendKeys(chromedp.ID("password"), user.Password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	); err != nil {
		fail("fill in the login form", err)
	}
	back := fmt.Sprintf(`location.origin === %s && !location.pathname.startsWith("/login") && !location.pathname.startsWith("/auth")`, jsString(site.ui))
	if err := pollAcrossNavigations(ctx, back, 60*time.Second); err != nil {
		fail("come back to the UI", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		fail("reopen "+page, err)
	}
	return ssoSession{ctx: ctx, calls: calls, bearer: bearer}
}

// pollAcrossNavigations evaluates the JavaScript expression expr until it
// is true or the timeout passes. Unlike chromedp.Poll it keeps going when
// the page navigates away meanwhile (a sign-in is a chain of redirects).
func pollAcrossNavigations(ctx context.Context, expr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ssoWaitForText waits until the page shows every string in want, and saves a
// screenshot.
func ssoWaitForText(t *testing.T, s ssoSession, want []string, shot string) {
	t.Helper()
	wantJS, _ := json.Marshal(want)
	err := pollAcrossNavigations(s.ctx,
		fmt.Sprintf(`(() => { const t = document.body ? document.body.innerText : ""; return %s.every(w => t.includes(w)); })()`, wantJS),
		90*time.Second)
	p := screenshot(t, s.ctx, shot)
	if err != nil {
		text, _ := chromedp.Run(s.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("the page never showed the plaintext: %v\ncodec calls: %+v\nscreenshot: %s\npage text:\n%s", err, s.calls.list(), p, text)
	}
	t.Logf("screenshot: %s", p)
}

// observeToken checks the tokens the UI sent with POST /decode: the bearer
// token in Authorization must be user's access token signed with kid, and
// reports what Authorization-Extras held. The provider puts "permissions"
// in access tokens only and "nonce" in ID tokens only.
func observeToken(t *testing.T, b *bearerTokens, user testenv.OIDCUser, kid string) {
	t.Helper()
	header, claims := decodeJWTUnverified(t, "Authorization", b.first(t))
	if claims["sub"] != user.ID {
		t.Errorf("token sub %v, want %s", claims["sub"], user.ID)
	}
	if header.Kid != kid {
		t.Errorf("token signed with kid %q, want %q", header.Kid, kid)
	}
	_, hasPerms := claims["permissions"]
	_, hasNonce := claims["nonce"]
	switch {
	case hasPerms && !hasNonce:
		t.Logf("observed: Authorization: Bearer <the ACCESS token> (sub %s, kid %s, claims %v)", user.ID, header.Kid, claimNames(claims))
	case hasNonce:
		t.Errorf("observed: the UI passed the ID token as the bearer token (claims %v); want the access token", claimNames(claims))
	default:
		t.Errorf("the UI passed a bearer token that is neither the access token nor the ID token (claims %v)", claimNames(claims))
	}
	// The UI 2.42.1 also sends the ID token in Authorization-Extras; the
	// codec server ignores it (but CORS must allow it).
	if extra := b.firstExtras(); extra != "" {
		_, idClaims := decodeJWTUnverified(t, "Authorization-Extras", extra)
		if _, ok := idClaims["nonce"]; !ok || idClaims["sub"] != user.ID {
			t.Errorf("Authorization-Extras is not the user's ID token (claims %v)", claimNames(idClaims))
		} else {
			t.Logf("observed: Authorization-Extras: <the ID token> (claims %v)", claimNames(idClaims))
		}
	}
}

type ssoJWTHeader struct {
	Kid string `json:"kid"`
}

// decodeJWTUnverified decodes a JWT's header and claims without checking the
// signature (the codec server does that).
func decodeJWTUnverified(t *testing.T, what, token string) (ssoJWTHeader, map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%s is not a JWT (%d parts)", what, len(parts))
	}
	var header ssoJWTHeader
	var claims map[string]any
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("%s: JWT part %d: %v", what, i, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: JWT part %d: %v", what, i, err)
		}
	}
	return header, claims
}

func claimNames(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// bearerTokens records the Authorization header of the browser's
// POST /decode requests to one URL.
type bearerTokens struct {
	url    string
	mu     sync.Mutex
	tokens []string // "" for a request without a bearer token
	extras []string // the Authorization-Extras header, "" when absent
}

func (b *bearerTokens) event(ev any) {
	e, ok := ev.(*network.EventRequestWillBeSent)
	if !ok || e.Request.Method != "POST" || e.Request.URL != b.url {
		return
	}
	var tok, extra string
	for k, v := range e.Request.Headers {
		s, ok := v.(string)
		switch {
		case ok && strings.EqualFold(k, "Authorization"):
			tok, _ = strings.CutPrefix(s, "Bearer ")
		case ok && strings.EqualFold(k, "Authorization-Extras"):
			extra = s
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = append(b.tokens, tok)
	b.extras = append(b.extras, extra)
}

// firstExtras returns the Authorization-Extras header of the first
// POST /decode ("" when absent).
func (b *bearerTokens) firstExtras() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.extras) == 0 {
		return ""
	}
	return b.extras[0]
}

// first returns the bearer token of the first POST /decode, failing the
// test when there was none or it had no bearer token.
func (b *bearerTokens) first(t *testing.T) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.tokens) == 0 {
		t.Fatalf("the browser made no POST %s", b.url)
	}
	if b.tokens[0] == "" {
		t.Fatalf("the browser's POST %s had no bearer token", b.url)
	}
	return b.tokens[0]
}

// postDecodeStatuses returns the statuses of the answered POST /decode calls.
func (c *codecCalls) postDecodeStatuses() []int64 {
	var out []int64
	for _, call := range c.list() {
		if call.Method == "POST" && strings.HasSuffix(call.URL, "/decode") && call.Status != 0 {
			out = append(out, call.Status)
		}
	}
	return out
}

func waitPostDecodeStatus(ctx context.Context, c *codecCalls, want int64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		st := c.postDecodeStatuses()
		if slices.Contains(st, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no POST /decode answered %d (got %v)", want, st)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitAuditLine polls the codec server's audit log (JSON lines) for a decode
// by subject answered with status and returns that line.
func waitAuditFileLine(path, subject string, status int) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.Open(path)
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var l struct {
					Subject string `json:"subject"`
					Route   string `json:"route"`
					Status  int    `json:"status"`
				}
				if json.Unmarshal(sc.Bytes(), &l) == nil && l.Subject == subject && l.Status == status && strings.Contains(l.Route, "decode") {
					f.Close()
					return sc.Text(), nil
				}
			}
			f.Close()
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			return "", fmt.Errorf("no decode by %s with status %d in %s:\n%s", subject, status, path, b)
		}
		time.Sleep(100 * time.Millisecond) // polling a file with a deadline, not synchronisation
	}
}

func ssoRandHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
