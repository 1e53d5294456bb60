package codecserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/keyring"
)

func TestRoundTripKeepsOrderAndCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	in := plainPayloads(5, 100)
	enc := e.do(call{path: "/encode", body: body(t, in), headers: map[string]string{"Authorization": e.bearer("default:write")}})
	if enc.status != 200 {
		t.Fatalf("encode: %d %s", enc.status, enc.body)
	}
	sealed := enc.payloads(t)
	if len(sealed) != len(in) {
		t.Fatalf("encode returned %d payloads, want %d", len(sealed), len(in))
	}
	for _, p := range sealed {
		if bytes.Contains(p.Data, in[0].Data[:10]) {
			t.Fatal("encoded payload holds plaintext")
		}
	}
	// A plain payload in the middle passes through decode untouched.
	mixed := append(append([]*commonpb.Payload{}, sealed[:2]...), append([]*commonpb.Payload{in[4]}, sealed[2:]...)...)
	dec := e.do(call{path: "/decode", body: body(t, mixed), headers: map[string]string{"Authorization": e.bearer("default:read")}})
	if dec.status != 200 {
		t.Fatalf("decode: %d %s", dec.status, dec.body)
	}
	want := append(append([]*commonpb.Payload{}, in[:2]...), append([]*commonpb.Payload{in[4]}, in[2:]...)...)
	got := dec.payloads(t)
	if len(got) != len(want) {
		t.Fatalf("decode returned %d payloads, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("payload %d differs after the round trip", i)
		}
	}
	for _, h := range []http.Header{enc.header, dec.header} {
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", h.Get("Cache-Control"))
		}
		if len(h.Get("X-Request-Id")) != 16 {
			t.Errorf("X-Request-Id = %q, want a 16-digit hex ID", h.Get("X-Request-Id"))
		}
	}
	if enc.header.Get("X-Request-Id") == dec.header.Get("X-Request-Id") {
		t.Error("two requests got the same X-Request-Id")
	}
}

func TestSDKRemoteCodecInterop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true})
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: e.url})
	in := plainPayloads(3, 200)
	sealed, err := remote.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	// The in-process codec opens what the server sealed, and the server
	// opens what the in-process codec sealed.
	local, err := e.codec.Decode(sealed)
	if err != nil {
		t.Fatal(err)
	}
	back, err := remote.Decode(e.sealed("default", 3))
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(local[i], in[i]) {
			t.Errorf("payload %d: in-process decode differs", i)
		}
		if !bytes.Equal(back[i].Data, plainPayloads(3, 64)[i].Data) {
			t.Errorf("payload %d: remote decode differs", i)
		}
	}
}

func TestJWT(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	now := time.Now()
	iss := e.iss
	other := jwttest.New(t, jwttest.Options{KeyID: "attacker"})
	sealed := body(t, e.sealed("default", 2))
	tests := []struct {
		name      string
		auth      string
		path      string
		ns        string
		want      int
		wantError string
	}{
		{name: "a valid token with read decodes", auth: e.bearer("default:read"), want: 200},
		{name: "a valid token as a single string claim decodes", auth: iss.Bearer(t, jwttest.Claims{Extra: map[string]any{"permissions": "other:read default:read"}}), want: 200},
		{name: "system:admin decodes any namespace", auth: e.bearer("system:admin"), ns: "payments", want: 200},
		{name: "no Authorization header is 401", want: 401, wantError: "missing bearer token"},
		{name: "a Basic header is 401", auth: "Basic YTpi", want: 401},
		{name: "an expired token is 401", auth: iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}), want: 401, wantError: "token expired"},
		{name: "a token not valid yet is 401", auth: iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, NotBefore: now.Add(time.Hour)}), want: 401, wantError: "not valid yet"},
		{name: "a token within the clock skew is fine", auth: iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, NotBefore: now.Add(5 * time.Second)}), want: 200},
		{name: "a wrong issuer is 401", auth: iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, Issuer: "https://evil.test"}), want: 401, wantError: "wrong issuer"},
		{name: "a wrong audience is 401", auth: iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, Audience: []string{"other"}}), want: 401, wantError: "wrong audience"},
		{name: "alg none is 401", auth: "Bearer " + iss.Unsigned(t, jwttest.Claims{Permissions: []string{"default:read"}}), want: 401},
		{name: "HS256 signed with the public key is 401", auth: "Bearer " + iss.HS256WithPublicKey(t, jwttest.Claims{Permissions: []string{"default:read"}}), want: 401},
		{name: "a token from another key with a known kid is 401", auth: other.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, KeyID: iss.KeyID()}), want: 401},
		{name: "garbage is 401", auth: "Bearer not.a.jwt", want: 401},
		{name: "no permissions claim is 403", auth: iss.Bearer(t, jwttest.Claims{}), want: 403},
		{name: "read on another namespace is 403", auth: e.bearer("payments:read"), want: 403, wantError: "default:read"},
		{name: "permission on the path namespace is checked", auth: e.bearer("default:read"), path: "/payments/decode", want: 403},
		{name: "encode needs write", auth: e.bearer("default:read"), path: "/encode", want: 403, wantError: "default:write"},
		{name: "encode with write works", auth: e.bearer("default:write"), path: "/encode", want: 200},
		{name: "encode with worker works", auth: e.bearer("default:worker"), path: "/encode", want: 200},
		{name: "a permissions claim of non-strings is 403: the entries are ignored", auth: iss.Bearer(t, jwttest.Claims{Extra: map[string]any{"permissions": []any{1, 2}}}), want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/decode"
			}
			h := map[string]string{"Origin": uiOrigin}
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			if tt.ns != "" {
				h["X-Namespace"] = tt.ns
			}
			b := sealed
			if path == "/encode" {
				b = body(t, plainPayloads(2, 16))
			}
			if tt.ns != "" && tt.ns != "default" {
				b = body(t, e.sealed(tt.ns, 1))
			}
			a := e.do(call{path: path, body: b, headers: h})
			if a.status != tt.want {
				t.Fatalf("status %d (%s), want %d", a.status, a.errText, tt.want)
			}
			if tt.wantError != "" && !strings.Contains(a.errText, tt.wantError) {
				t.Errorf("error %q, want it to mention %q", a.errText, tt.wantError)
			}
			if a.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer WWW-Authenticate header: %q", a.header.Get("WWW-Authenticate"))
			}
			if a.status >= 400 && a.header.Get("Access-Control-Allow-Origin") != uiOrigin {
				t.Errorf("error answer without CORS headers for an allowed origin")
			}
		})
	}
	// No token, valid or not, and no Authorization header reaches a log:
	// every JWT starts with the base64 of `{"`, "eyJ".
	logs := e.log.String() + e.audit.String()
	for _, leak := range []string{"eyJ", "not.a.jwt", "YTpi"} {
		if strings.Contains(logs, leak) {
			t.Errorf("the log holds %q from an Authorization header:\n%s", leak, logs)
		}
	}
}

func TestJWTUnknownKidRefreshesOnceThenRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{jwtConf: func(c *codecserver.JWTConfig) { c.MinRefreshInterval = time.Hour }})
	sealed := body(t, e.sealed("default", 1))
	start := e.iss.Fetches()
	unknown := e.iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, KeyID: "nobody"})
	for i := 0; i < 3; i++ {
		a := e.do(call{path: "/decode", body: sealed, headers: map[string]string{"Authorization": unknown}})
		if a.status != 401 || !strings.Contains(a.errText, "unknown key") {
			t.Fatalf("try %d: %d %q, want 401 unknown key", i, a.status, a.errText)
		}
	}
	if got := e.iss.Fetches() - start; got != 1 {
		t.Errorf("JWKS fetched %d times for three unknown-kid tokens, want 1 (rate limited)", got)
	}
}

func TestJWTKeyRotationIsPickedUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.iss.Rotate(t, "test-key-2")
	a := e.do(call{path: "/decode", body: body(t, e.sealed("default", 1)), headers: map[string]string{"Authorization": e.bearer("default:read")}})
	if a.status != 200 {
		t.Fatalf("token under a rotated key: %d %s", a.status, a.errText)
	}
}

func TestJWTVerifierConfig(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	file := iss.WriteJWKSFile(t, "")
	for _, tt := range []struct {
		name string
		cfg  codecserver.JWTConfig
		ok   bool
	}{
		{"a JWKS file", codecserver.JWTConfig{JWKSFile: file}, true},
		{"no key source", codecserver.JWTConfig{}, false},
		{"two key sources", codecserver.JWTConfig{JWKSFile: file, JWKSURL: "http://x"}, false},
		{"HS256 in the allow-list", codecserver.JWTConfig{JWKSFile: file, Algorithms: []string{"HS256"}}, false},
		{"none in the allow-list", codecserver.JWTConfig{JWKSFile: file, Algorithms: []string{"none"}}, false},
		{"a missing file", codecserver.JWTConfig{JWKSFile: file + ".missing"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := codecserver.NewJWTVerifier(context.Background(), tt.cfg)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	// Browsers send the request headers sorted and in lower case; the Web
	// UI 2.42.1 sends "content-type,x-namespace".
	preflightWith := func(origin, headers string) answer {
		return e.do(call{method: http.MethodOptions, path: "/decode", headers: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers}})
	}
	preflight := func(origin string) answer { return preflightWith(origin, "authorization,content-type,x-namespace") }
	if a := preflightWith(uiOrigin, "content-type,x-namespace"); a.header.Get("Access-Control-Allow-Origin") != uiOrigin {
		t.Errorf("the Web UI's own preflight is not allowed: %v", a.header)
	}
	a := preflight(uiOrigin)
	if a.status/100 != 2 {
		t.Fatalf("preflight status %d", a.status)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":      uiOrigin,
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Max-Age":           "600",
	} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(strings.ToLower(a.header.Get("Access-Control-Allow-Headers")), "x-namespace") {
		t.Errorf("Access-Control-Allow-Headers = %q", a.header.Get("Access-Control-Allow-Headers"))
	}
	if !strings.Contains(strings.Join(a.header.Values("Vary"), ","), "Origin") {
		t.Errorf("Vary = %q, want Origin", a.header.Values("Vary"))
	}
	if a.header.Get("X-Request-Id") == "" {
		t.Error("preflight without X-Request-Id")
	}
	// A disallowed origin gets no CORS header at all: not on the preflight,
	// not on an error, not on a success.
	sealed := body(t, e.sealed("default", 1))
	for _, bad := range []string{"http://evil.test", "http://localhost:8234", "https://localhost:8233", "null"} {
		answers := map[string]answer{
			"preflight": preflight(bad),
			"401":       e.do(call{path: "/decode", body: []byte(`{}`), headers: map[string]string{"Origin": bad}}),
			"200":       e.do(call{path: "/decode", body: sealed, headers: map[string]string{"Origin": bad, "Authorization": e.bearer("default:read")}}),
		}
		if answers["200"].status != 200 {
			t.Errorf("POST from %s with a valid token: %d; CORS is the browser's business, not an authorization check", bad, answers["200"].status)
		}
		for what, a := range answers {
			for k := range a.header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s from %s has %s: %q", what, bad, k, a.header.Get(k))
				}
			}
		}
	}
}

func TestCORSWildcardRefused(t *testing.T) {
	t.Parallel()
	c, _ := codec.New(newEnv(t, envOptions{noAuth: true}).kr, codec.Options{})
	for _, o := range []string{"*", "https://*.example.com", "localhost:8233", "http://x/path", "ftp://x"} {
		if _, err := codecserver.New(codecserver.Config{Codec: c, Unauthenticated: true, CORSOrigins: []string{o}}); err == nil {
			t.Errorf("origin %q accepted", o)
		}
	}
}

func TestNormalizeOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://localhost:8233":   "http://localhost:8233",
		"http://localhost:8233/":  "http://localhost:8233",
		"HTTPS://UI.Example.com":  "https://ui.example.com",
		"https://ui.example:443/": "https://ui.example",
		"http://[::1]:8233":       "http://[::1]:8233",
	} {
		got, err := codecserver.NormalizeOrigin(in)
		if err != nil || got != want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{mutate: func(c *codecserver.Config) { c.MaxBodyBytes = 4096; c.MaxPayloads = 10 }})
	read := e.bearer("default:read")
	admin := e.bearer("system:admin")
	tests := []struct {
		name    string
		c       call
		want    int
		reason  string
		mention string
	}{
		{"an unknown route is 404", call{method: "GET", path: "/nope"}, 404, "not_found", "not found"},
		{"GET /decode is 405", call{method: "GET", path: "/decode"}, 405, "method_not_allowed", "not allowed"},
		{"no token is 401", call{path: "/decode", body: []byte(`{}`)}, 401, "unauthenticated", "missing bearer token"},
		{"a token without the permission is 403", call{path: "/decode", body: []byte(`{}`), headers: map[string]string{"Authorization": e.bearer("other:read")}}, 403, "forbidden", "default:read"},
		{"a body over the limit is 413", call{path: "/decode", body: body(t, plainPayloads(3, 4096)), headers: map[string]string{"Authorization": read}}, 413, "body_too_large", "larger than 4096"},
		{"a body over the limit on encode is 413", call{path: "/encode", body: body(t, plainPayloads(3, 4096)), headers: map[string]string{"Authorization": admin}}, 413, "body_too_large", "larger than 4096"},
		{"too many payloads is 413", call{path: "/decode", body: body(t, plainPayloads(11, 1)), headers: map[string]string{"Authorization": read}}, 413, "too_many_payloads", "at most 10"},
		{"malformed JSON is 400", call{path: "/decode", body: []byte(`{"payloads": [`), headers: map[string]string{"Authorization": read}}, 400, "bad_request", "malformed request"},
		{"JSON of the wrong shape is 400", call{path: "/decode", body: []byte(`{"payloads": {"secret-value": 1}}`), headers: map[string]string{"Authorization": read}}, 400, "bad_request", "malformed request"},
		{"a bad base64 value is 400 and not echoed", call{path: "/encode", body: []byte(`{"payloads":[{"data":"secret-value!!"}]}`), headers: map[string]string{"Authorization": admin}}, 400, "bad_request", "malformed request"},
		{"path and header disagreeing is 400", call{path: "/default/decode", body: []byte(`{}`), headers: map[string]string{"Authorization": admin, "X-Namespace": "other"}}, 400, "namespace", "differ"},
		{"an invalid namespace is 400", call{path: "/decode", body: []byte(`{}`), headers: map[string]string{"Authorization": admin, "X-Namespace": "a b"}}, 400, "namespace", "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.c.headers == nil {
				tt.c.headers = map[string]string{}
			}
			tt.c.headers["Origin"] = uiOrigin
			a := e.do(tt.c) // also checks the body is {"error": ...}
			if a.status != tt.want {
				t.Fatalf("status %d (%q), want %d", a.status, a.errText, tt.want)
			}
			if !strings.Contains(a.errText, tt.mention) {
				t.Errorf("error %q does not mention %q", a.errText, tt.mention)
			}
			if strings.Contains(a.errText, "secret-value") {
				t.Errorf("error %q echoes the request", a.errText)
			}
			for k, want := range map[string]string{
				"Access-Control-Allow-Origin":      uiOrigin,
				"Access-Control-Allow-Credentials": "true",
				"Cache-Control":                    "no-store",
				"Content-Type":                     "application/json",
			} {
				if got := a.header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			id := a.header.Get("X-Request-Id")
			if id == "" {
				t.Fatal("no X-Request-Id")
			}
			line := logLine(t, e.log.String(), id)
			if line == nil {
				t.Fatalf("the failure log has no line with request ID %s:\n%s", id, e.log)
			}
			if line["reason"] != tt.reason || line["status"] != float64(tt.want) || line["msg"] != "request failed" {
				t.Errorf("failure log line %v: want reason %q, status %d", line, tt.reason, tt.want)
			}
		})
	}
	if strings.Contains(e.log.String(), "secret-value") || strings.Contains(e.audit.String(), "secret-value") {
		t.Errorf("a value from a rejected body reached the log:\n%s", e.log)
	}
}

// logLine returns the JSON log line whose request_id is id, or nil.
func logLine(t *testing.T, log, id string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["request_id"] == id {
			return m
		}
	}
	return nil
}

func TestBodyLimitWithoutContentLength(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) { c.MaxBodyBytes = 1024 }})
	req, _ := http.NewRequest("POST", e.url+"/decode", struct{ *bytes.Reader }{bytes.NewReader(body(t, plainPayloads(4, 1024)))})
	req.ContentLength = -1 // chunked
	req.Header.Set("Origin", uiOrigin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil || resp.StatusCode != 413 || !strings.Contains(j.Error, "larger than 1024") {
		t.Errorf("status %d, error %q (%v); want 413 with a JSON error", resp.StatusCode, j.Error, err)
	}
	for k, want := range map[string]string{"Access-Control-Allow-Origin": uiOrigin, "Cache-Control": "no-store", "Content-Type": "application/json"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if line := logLine(t, e.log.String(), resp.Header.Get("X-Request-Id")); line == nil || line["reason"] != "body_too_large" {
		t.Errorf("no failure log line with the request ID and reason body_too_large:\n%s", e.log)
	}
}

func TestPayloadsThatFailToDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(e *env) []*commonpb.Payload
		want    int
	}{
		{"a tampered payload is 422", func(e *env) []*commonpb.Payload {
			ps := e.sealed("default", 3)
			ps[1].Data[len(ps[1].Data)-1] ^= 1
			return ps
		}, 422},
		{"a truncated payload is 422", func(e *env) []*commonpb.Payload {
			ps := e.sealed("default", 1)
			ps[0].Data = ps[0].Data[:5]
			return ps
		}, 422},
		{"an unknown key is 422", func(e *env) []*commonpb.Payload {
			ps := e.sealed("default", 1)
			id := e.kr.ActiveKeyID()
			e.kr.Rotate()
			e.kr.Forget(id)
			return ps
		}, 422},
		{"an unavailable keyring is 503", func(e *env) []*commonpb.Payload {
			ps := e.sealed("default", 1)
			e.kr.SetError(keyring.ErrUnavailable)
			return ps
		}, 503},
		{"a keyring refusing access is 403", func(e *env) []*commonpb.Payload {
			ps := e.sealed("default", 1)
			e.kr.SetError(keyring.ErrPermission)
			return ps
		}, 403},
		{"an unexpected keyring error is 500", func(e *env) []*commonpb.Payload {
			ps := e.sealed("default", 1)
			e.kr.SetError(errors.New("disk on fire at /secret/path"))
			return ps
		}, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{noAuth: true})
			ps := tt.prepare(e)
			a := e.do(call{path: "/decode", body: body(t, ps), headers: map[string]string{"Origin": uiOrigin}})
			if a.status != tt.want {
				t.Fatalf("status %d (%q), want %d", a.status, a.errText, tt.want)
			}
			if a.header.Get("Access-Control-Allow-Origin") != uiOrigin {
				t.Error("no CORS headers on the error answer for an allowed origin")
			}
			if strings.Contains(a.errText, "codec:") || strings.Contains(a.errText, "keyring") && tt.want == 500 || strings.Contains(a.errText, "/secret/path") {
				t.Errorf("error %q leaks internal detail", a.errText)
			}
			if a.header.Get("Cache-Control") != "no-store" {
				t.Error("no Cache-Control: no-store on a failed decode")
			}
			if line := logLine(t, e.log.String(), a.header.Get("X-Request-Id")); line == nil || line["reason"] == "" {
				t.Errorf("failure not logged with the request ID and a reason:\n%s", e.log)
			}
		})
	}
}

func TestNamespaceResolution(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		def    string // Config.DefaultNamespace; "" leaves it unset
		path   string
		header *string
		want   string
		status int
	}{
		{"no header means the default namespace", "", "/decode", nil, "default", 200},
		{"an empty header (the temporal CLI) means the default namespace", "", "/decode", ptr(""), "default", 200},
		{"an empty header means the configured default namespace", "staging", "/decode", ptr(""), "staging", 200},
		{"no header means the configured default namespace", "staging", "/decode", nil, "staging", 200},
		{"the header wins over the configured default namespace", "staging", "/decode", ptr("payments"), "payments", 200},
		{"the header names the namespace", "", "/decode", ptr("payments"), "payments", 200},
		{"the path names the namespace", "", "/payments/decode", nil, "payments", 200},
		{"the path wins over an empty header", "", "/payments/decode", ptr(""), "payments", 200},
		{"the path wins over the configured default namespace", "staging", "/payments/decode", ptr(""), "payments", 200},
		{"path and header agreeing is fine", "", "/payments/decode", ptr("payments"), "payments", 200},
		{"path and header disagreeing is 400", "", "/payments/decode", ptr("default"), "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{mutate: func(c *codecserver.Config) { c.DefaultNamespace = tt.def }})
			h := map[string]string{"Authorization": e.bearer(tt.want + ":write")}
			if tt.want == "" {
				h["Authorization"] = e.bearer("system:admin")
			}
			if tt.header != nil {
				h["X-Namespace"] = *tt.header
			}
			encPath := strings.Replace(tt.path, "decode", "encode", 1)
			a := e.do(call{path: encPath, body: body(t, plainPayloads(1, 10)), headers: h})
			if a.status != tt.status {
				t.Fatalf("status %d (%q), want %d", a.status, a.errText, tt.status)
			}
			if tt.status != 200 {
				return
			}
			if got := e.kr.namespaces(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("keyring asked for namespaces %q, want [%s]", got, tt.want)
			}
			var line struct{ Namespace string }
			json.Unmarshal([]byte(strings.SplitN(e.audit.String(), "\n", 2)[0]), &line)
			if line.Namespace != tt.want {
				t.Errorf("audit namespace %q, want %q", line.Namespace, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestAuditAndLogsHoldNoPlaintext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	secret := "TOP-SECRET-PLAINTEXT"
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + secret + `"`)}}
	tok := e.bearer("default:write")
	enc := e.do(call{path: "/encode", body: body(t, in), headers: map[string]string{"Authorization": tok}})
	if enc.status != 200 {
		t.Fatal(enc.status)
	}
	e.do(call{path: "/decode", body: enc.body, headers: map[string]string{"Authorization": e.bearer("default:read")}})
	e.do(call{path: "/decode", body: enc.body, headers: map[string]string{"Authorization": e.bearer("other:read")}})
	lines := strings.Split(strings.TrimSpace(e.audit.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d audit lines, want 3:\n%s", len(lines), e.audit)
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &last); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "request_id", "subject", "namespace", "route", "count", "status", "outcome", "remote"} {
		if _, ok := last[k]; !ok {
			t.Errorf("audit line has no %q: %s", k, lines[2])
		}
	}
	if last["outcome"] != "forbidden" || last["subject"] != jwttest.DefaultSubject || last["route"] != "decode" {
		t.Errorf("audit line %s", lines[2])
	}
	// A rejected body and a bad token are not echoed into the log either.
	bad := e.do(call{path: "/encode", body: []byte(`{"payloads":[{"data":"` + secret + `!!"}]}`), headers: map[string]string{"Authorization": tok}})
	if bad.status != 400 || strings.Contains(string(bad.body), secret) {
		t.Errorf("malformed encode: %d %s", bad.status, bad.body)
	}
	e.do(call{path: "/decode", body: enc.body, headers: map[string]string{"Authorization": "Bearer " + secret}})
	all := e.audit.String() + e.log.String()
	for _, leak := range []string{secret, strings.TrimPrefix(tok, "Bearer "), "eyJ"} {
		if strings.Contains(all, leak) {
			t.Errorf("logs contain %q", leak[:3])
		}
	}
	if !strings.Contains(e.log.String(), "protojson rejected the body at line 1:") {
		t.Errorf("the failure log does not say where the body went wrong:\n%s", e.log)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	sealed := body(t, e.sealed("default", 3))
	e.do(call{path: "/decode", body: sealed, headers: map[string]string{"Authorization": e.bearer("default:read")}})
	e.do(call{path: "/decode", body: sealed, headers: map[string]string{"Authorization": e.bearer("default:read")}})
	e.do(call{path: "/decode", body: []byte(`{}`)})
	a := e.do(call{method: "GET", path: "/metrics"})
	for _, want := range []string{
		`codec_server_requests_total{code="200",route="/decode"} 2`,
		`codec_server_requests_total{code="401",route="/decode"} 1`,
		`codec_server_payloads_total{op="decode"} 6`,
		`codec_server_failures_total{reason="unauthenticated"} 1`,
		`codec_server_request_duration_seconds_bucket`,
		// The first decode unwraps the one data key, the second finds it cached.
		`codec_server_decode_data_keys_total{source="keyring"} 1`,
		`codec_server_decode_data_keys_total{source="cache"} 1`,
	} {
		if !strings.Contains(string(a.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestKeyringMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true})
	m := codecserver.NewMetrics()
	kr := codecserver.InstrumentKeyring(e.kr, m)
	if _, ok := kr.(keyring.Checker); !ok {
		t.Error("instrumented keyring lost Check")
	}
	c, _ := codec.New(kr, codec.Options{})
	ps, _ := c.Encode(plainPayloads(2, 10))
	c2, _ := codec.New(kr, codec.Options{})
	c2.Decode(ps)
	srv, _ := codecserver.New(codecserver.Config{Codec: c, Unauthenticated: true, Metrics: m})
	rec := newRecorder()
	srv.ServeHTTP(rec, mustReq("GET", "/metrics"))
	for _, want := range []string{`codec_server_keyring_calls_total{op="new_data_key",outcome="ok"} 1`, `codec_server_keyring_calls_total{op="unwrap_data_keys",outcome="ok"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{mutate: func(c *codecserver.Config) { c.ReadyzCacheTTL = -1 }})
	if a := e.do(call{method: "GET", path: "/healthz"}); a.status != 200 {
		t.Errorf("healthz %d", a.status)
	}
	if a := e.do(call{method: "GET", path: "/readyz"}); a.status != 200 {
		t.Errorf("readyz %d", a.status)
	}
	e.kr.SetError(keyring.ErrUnavailable)
	if a := e.do(call{method: "GET", path: "/readyz"}); a.status != 503 {
		t.Errorf("readyz with a failing keyring: %d, want 503", a.status)
	}
	if a := e.do(call{method: "GET", path: "/healthz"}); a.status != 200 {
		t.Errorf("healthz with a failing keyring: %d, want 200 (alive)", a.status)
	}
}

func TestBigHistoryUnwrapsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true})
	// Seal 2,000 payloads under several data keys with a fresh codec, then
	// decode them with the server's codec whose cache is cold.
	other, _ := codec.New(e.kr, codec.Options{DataKeyMaxUses: 500})
	ps, err := other.Encode(plainPayloads(2000, 1024))
	if err != nil {
		t.Fatal(err)
	}
	before := e.kr.UnwrapCalls()
	a := e.do(call{path: "/decode", body: body(t, ps)})
	if a.status != 200 {
		t.Fatalf("status %d %q", a.status, a.errText)
	}
	if got := len(a.payloads(t)); got != 2000 {
		t.Fatalf("%d payloads back", got)
	}
	if calls := e.kr.UnwrapCalls() - before; calls != 1 {
		t.Errorf("%d keyring unwrap calls for one request, want 1", calls)
	}
}

func TestNewRefusesUnsafeConfig(t *testing.T) {
	t.Parallel()
	c, _ := codec.New(newEnv(t, envOptions{noAuth: true}).kr, codec.Options{})
	for name, cfg := range map[string]codecserver.Config{
		"no codec":           {Unauthenticated: true},
		"no auth":            {Codec: c},
		"auth and no auth":   {Codec: c, Unauthenticated: true, ClientCertPermissions: codecserver.ClientCertPermissions{}},
		"a bad default ns":   {Codec: c, Unauthenticated: true, DefaultNamespace: "a/b"},
		"a negative limit":   {Codec: c, Unauthenticated: true, MaxPayloads: -1},
		"a wildcard origin":  {Codec: c, Unauthenticated: true, CORSOrigins: []string{"*"}},
		"an origin and path": {Codec: c, Unauthenticated: true, CORSOrigins: []string{"http://a/b"}},
	} {
		if _, err := codecserver.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", codec.ErrDecrypt), 422},
		{fmt.Errorf("x: %w", codec.ErrMalformed), 422},
		{fmt.Errorf("x: %w", codec.ErrUnsupported), 422},
		{fmt.Errorf("x: %w", keyring.ErrUnknownKey), 422},
		{fmt.Errorf("x: %w", keyring.ErrPermission), 403},
		{fmt.Errorf("x: %w", keyring.ErrUnavailable), 503},
		{context.DeadlineExceeded, 503},
		{&http.MaxBytesError{Limit: 5}, 413},
		{errors.New("boom"), 500},
	} {
		status, _, msg := codecserver.Classify(tt.err)
		if status != tt.want {
			t.Errorf("Classify(%v) = %d, want %d", tt.err, status, tt.want)
		}
		if strings.Contains(msg, "x:") || strings.Contains(msg, "boom") {
			t.Errorf("Classify(%v) message %q echoes the error", tt.err, msg)
		}
	}
}

func TestOIDCDiscovery(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{Alg: "ES256"})
	jwksURL := iss.ServeJWKS(t)
	var issuerURL string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": issuerURL, "jwks_uri": jwksURL})
	})
	hs := httptestServer(t, mux)
	issuerURL = hs
	v, err := codecserver.NewJWTVerifier(context.Background(), codecserver.JWTConfig{OIDCIssuer: issuerURL})
	if err != nil {
		t.Fatal(err)
	}
	if v.Source() != jwksURL {
		t.Errorf("keys from %s, want %s", v.Source(), jwksURL)
	}
	// The discovered issuer is enforced.
	if _, err := v.Verify(context.Background(), iss.Token(t, jwttest.Claims{Issuer: issuerURL, Permissions: []string{"default:read"}})); err != nil {
		t.Errorf("token from the issuer: %v", err)
	}
	if _, err := v.Verify(context.Background(), iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}})); err == nil {
		t.Error("token from another issuer accepted")
	}
}
