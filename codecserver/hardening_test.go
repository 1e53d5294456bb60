package codecserver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// emptyPayloadsBody is {"payloads":[{},{},...]} with n payloads: ~3 bytes
// each, which protojson would turn into n messages.
func emptyPayloadsBody(n int) []byte {
	var b bytes.Buffer
	b.Grow(3*n + 16)
	b.WriteString(`{"payloads":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("{}")
	}
	b.WriteString("]}")
	return b.Bytes()
}

// TestManyEmptyPayloadsAreRefusedBeforeParsing is not parallel: it
// measures what the process allocates while the server answers, so no
// other test may run meanwhile.
func TestManyEmptyPayloadsAreRefusedBeforeParsing(t *testing.T) {
	e := newEnv(t, envOptions{noAuth: true}) // default limits
	const n = 1_000_000
	b := emptyPayloadsBody(n)
	if int64(len(b)) > codecserver.DefaultMaxBodyBytes {
		t.Fatalf("test body of %d bytes is over the default body limit", len(b))
	}
	for _, path := range []string{"/decode", "/encode"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a := e.do(call{path: path, body: b})
		runtime.ReadMemStats(&after)
		if a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.errText, fmt.Sprintf("at most %d", codecserver.DefaultMaxPayloads)) {
			t.Fatalf("%s of %d empty payloads: %d %q, want 413 naming the limit", path, n, a.status, a.errText)
		}
		if line := logLine(t, e.log.String(), a.header.Get("X-Request-Id")); line == nil || line["reason"] != "too_many_payloads" {
			t.Errorf("%s: no failure log line with reason too_many_payloads: %v", path, line)
		}
		// Reading the body takes len(b); protojson would take ~50x that.
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d-byte body, %d bytes allocated", path, len(b), alloc)
		if alloc > uint64(4*len(b)) {
			t.Errorf("%s: answering %d-byte body of %d empty payloads allocated %d MB, want under %d MB: refuse before parsing",
				path, len(b), n, alloc>>20, 4*len(b)>>20)
		}
	}
	// Below the limit such a body is still served.
	a := e.do(call{path: "/decode", body: emptyPayloadsBody(codecserver.DefaultMaxPayloads)})
	if a.status != 200 || len(a.payloads(t)) != codecserver.DefaultMaxPayloads {
		t.Fatalf("%d empty payloads: %d %q, want 200", codecserver.DefaultMaxPayloads, a.status, a.errText)
	}
}

func TestTooManyPayloadsBeforeMalformedJSONIs413(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) { c.MaxPayloads = 10 }})
	b := emptyPayloadsBody(11)
	truncated := b[:len(b)-2]
	if a := e.do(call{path: "/decode", body: truncated}); a.status != 413 {
		t.Errorf("11 payloads then a truncated body: %d %q, want 413", a.status, a.errText)
	}
	garbage := append(emptyPayloadsBody(3)[:10], []byte(`{},{},x`+strings.Repeat(" ", 64))...)
	if a := e.do(call{path: "/decode", body: garbage}); a.status != 400 || !strings.Contains(a.errText, "malformed request") {
		t.Errorf("malformed body under the limit: %d %q, want 400 malformed request", a.status, a.errText)
	}
}

// TestLegacyPayloadsDecodeWithMetrics decodes a payload of the samples'
// static-key codec through a server whose keyring is instrumented, as
// cmd/codec-server wires it with metrics on (the default).
func TestLegacyPayloadsDecodeWithMetrics(t *testing.T) {
	t.Parallel()
	path, sealed, orig := keyringtest.LegacyKeyFile(t)
	file, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := codecserver.NewMetrics()
	kr := codecserver.InstrumentKeyring(file, m)
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := codecserver.New(codecserver.Config{Codec: c, Keyring: kr, Unauthenticated: true, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	url := httptestServer(t, srv)
	resp, err := http.Post(url+"/decode", "application/json", bytes.NewReader(body(t, []*commonpb.Payload{sealed})))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("decode of a static-key sample payload with metrics on: %d %s", resp.StatusCode, b)
	}
	got := answer{status: 200, body: b}.payloads(t)
	if len(got) != 1 || !proto.Equal(got[0], orig) {
		t.Fatalf("decoded %v, want %v", got, orig)
	}
	rec := newRecorder()
	srv.ServeHTTP(rec, mustReq("GET", "/metrics"))
	if want := `codec_server_keyring_calls_total{op="legacy_key",outcome="ok"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics lack %s", want)
	}
}

type plainKR struct{ keyring.Keyring }

type checkKR struct{ keyring.Keyring }

func (checkKR) Check(context.Context) error { return nil }

type legacyKR struct{ keyring.Keyring }

func (legacyKR) LegacyKey(context.Context, string) (keyring.Secret, error) {
	return keyring.Secret{}, keyring.ErrUnknownKey
}

type bothKR struct{ checkKR }

func (bothKR) LegacyKey(context.Context, string) (keyring.Secret, error) {
	return keyring.Secret{}, keyring.ErrUnknownKey
}

func TestInstrumentKeyringKeepsOptionalInterfaces(t *testing.T) {
	t.Parallel()
	m := codecserver.NewMetrics()
	for _, tt := range []struct {
		kr              keyring.Keyring
		checker, legacy bool
	}{
		{plainKR{}, false, false},
		{checkKR{}, true, false},
		{legacyKR{}, false, true},
		{bothKR{}, true, true},
	} {
		kr := codecserver.InstrumentKeyring(tt.kr, m)
		_, c := kr.(keyring.Checker)
		_, l := kr.(keyring.LegacyKeys)
		if c != tt.checker || l != tt.legacy {
			t.Errorf("InstrumentKeyring(%T): Checker %v, LegacyKeys %v; want %v, %v", tt.kr, c, l, tt.checker, tt.legacy)
		}
	}
}

// TestJWTRefreshSurvivesAClientHangingUp: a client sends a token with an
// unknown kid and disconnects while the forced JWKS refresh runs. The
// refresh must still complete (and not burn the once-per-MinRefreshInterval
// budget on a canceled fetch), so a token under the new key is accepted.
func TestJWTRefreshSurvivesAClientHangingUp(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	var block atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if block.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(iss.JWKS(t))
	}))
	t.Cleanup(hs.Close)
	v, err := codecserver.NewJWTVerifier(context.Background(), codecserver.JWTConfig{
		JWKSURL: hs.URL, Issuer: iss.IssuerURL(), Audience: iss.Audience(), MinRefreshInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	iss.Rotate(t, "rotated")
	token := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}})
	block.Store(true)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := v.Verify(ctx, token); first <- err }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no JWKS refresh for an unknown kid")
	}
	cancel() // the client hangs up mid-refresh
	time.Sleep(100 * time.Millisecond)
	close(release)
	select {
	case <-first:
	case <-time.After(15 * time.Second):
		t.Fatal("Verify did not return")
	}
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatalf("token under the rotated key after a canceled request's refresh: %v", err)
	}
}

func TestLoopbackHostOnly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"localhost:8081", true}, {"LocalHost:8081", true},
		{"127.0.0.1", true}, {"127.0.0.1:8081", true}, {"127.1.2.3:80", true},
		{"[::1]", true}, {"[::1]:8081", true},
		{"", false}, {"evil.example", false}, {"evil.example:8081", false},
		{"localhost.evil.example:8081", false}, {"localhost.:8081", false},
		{"10.0.0.1:8081", false}, {"[::2]:8081", false}, {"0.0.0.0:8081", false},
		{"[fe80::1%25lo]:8081", false},
	} {
		if got := codecserver.IsLoopbackHost(tt.host); got != tt.want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}

	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) { c.LoopbackHostOnly = true }})
	open := newEnv(t, envOptions{noAuth: true})
	do := func(e *env, path, host string) answer {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body(t, plainPayloads(1, 8))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{status: resp.StatusCode, header: resp.Header, body: b}
	}
	for _, host := range []string{"attacker.example", "attacker.example:8081"} {
		a := do(e, "/encode", host)
		if a.status != 403 || !bytes.Contains(a.body, []byte(`"error":`)) {
			t.Errorf("Host %s: %d %s, want 403 with a JSON error", host, a.status, a.body)
		}
		if line := logLine(t, e.log.String(), a.header.Get("X-Request-Id")); line == nil || line["reason"] != "host_not_allowed" {
			t.Errorf("Host %s: no failure log line with reason host_not_allowed: %v", host, line)
		}
		if a := do(open, "/encode", host); a.status != 200 {
			t.Errorf("Host %s without LoopbackHostOnly: %d, want 200", host, a.status)
		}
	}
	for _, host := range []string{"localhost:8081", "127.0.0.1:8081", "[::1]:8081", "localhost"} {
		if a := do(e, "/encode", host); a.status != 200 {
			t.Errorf("Host %s: %d %s, want 200", host, a.status, a.body)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestJWTCanceledRefreshDoesNotCount: a forced refresh that fails with
// context.Canceled says nothing about the key source, so it must not use
// up the once-per-MinRefreshInterval budget.
func TestJWTCanceledRefreshDoesNotCount(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	url := iss.ServeJWKS(t)
	var cancelNext atomic.Bool
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if cancelNext.CompareAndSwap(true, false) {
			return nil, context.Canceled
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	v, err := codecserver.NewJWTVerifier(context.Background(), codecserver.JWTConfig{
		JWKSURL: url, Issuer: iss.IssuerURL(), Audience: iss.Audience(), MinRefreshInterval: time.Hour, HTTPClient: client,
	})
	if err != nil {
		t.Fatal(err)
	}
	iss.Rotate(t, "rotated")
	token := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}})
	cancelNext.Store(true)
	if _, err := v.Verify(context.Background(), token); err == nil {
		t.Fatal("verified although the refresh failed")
	}
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatalf("the refresh after a canceled one was rate limited: %v", err)
	}
}
