package codecserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

const uiOrigin = "http://localhost:8233"

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recordingKeyring remembers the namespaces it was asked for.
type recordingKeyring struct {
	*keyringtest.Keyring
	mu  sync.Mutex
	nss []string
}

func (k *recordingKeyring) NewDataKey(ctx context.Context, ns string) (keyring.DataKey, error) {
	k.mu.Lock()
	k.nss = append(k.nss, ns)
	k.mu.Unlock()
	return k.Keyring.NewDataKey(ctx, ns)
}

func (k *recordingKeyring) UnwrapDataKeys(ctx context.Context, ns string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	k.mu.Lock()
	k.nss = append(k.nss, ns)
	k.mu.Unlock()
	return k.Keyring.UnwrapDataKeys(ctx, ns, keys)
}

func (k *recordingKeyring) namespaces() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.nss...)
}

type env struct {
	t       *testing.T
	url     string
	kr      *recordingKeyring
	codec   *codec.Codec
	iss     *jwttest.Issuer
	jwksURL string
	log     *syncBuffer
	audit   *syncBuffer
}

type envOptions struct {
	noAuth  bool
	mutate  func(*codecserver.Config)
	jwtConf func(*codecserver.JWTConfig)
}

// newEnv starts a server with JWT (a served JWKS URL), CORS for uiOrigin,
// metrics and audit on.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, kr: &recordingKeyring{Keyring: keyringtest.New()}, log: &syncBuffer{}, audit: &syncBuffer{}}
	var err error
	metrics := codecserver.NewMetrics()
	if e.codec, err = codec.New(e.kr, codec.Options{DecodeObserver: metrics.ObserveDecode}); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(e.log, nil))
	cfg := codecserver.Config{
		Codec:       e.codec,
		Keyring:     e.kr,
		CORSOrigins: []string{uiOrigin + "/"},
		Logger:      logger,
		AuditLog:    slog.New(slog.NewJSONHandler(e.audit, nil)),
		Metrics:     metrics,
	}
	if o.noAuth {
		cfg.Unauthenticated = true
	} else {
		e.iss = jwttest.New(t, jwttest.Options{})
		e.jwksURL = e.iss.ServeJWKS(t)
		jc := codecserver.JWTConfig{JWKSURL: e.jwksURL, Issuer: e.iss.IssuerURL(), Audience: e.iss.Audience(), Logger: logger}
		if o.jwtConf != nil {
			o.jwtConf(&jc)
		}
		if cfg.JWT, err = codecserver.NewJWTVerifier(context.Background(), jc); err != nil {
			t.Fatal(err)
		}
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	srv, err := codecserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

func (e *env) bearer(perms ...string) string {
	return e.iss.Bearer(e.t, jwttest.Claims{Permissions: perms})
}

func plainPayloads(n, size int) []*commonpb.Payload {
	ps := make([]*commonpb.Payload, n)
	for i := range ps {
		data := bytes.Repeat([]byte{'a' + byte(i%26)}, size)
		ps[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: data}
	}
	return ps
}

func body(t testing.TB, ps []*commonpb.Payload) []byte {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type call struct {
	method  string
	path    string
	body    []byte
	headers map[string]string
}

type answer struct {
	status  int
	header  http.Header
	body    []byte
	errText string
}

func (e *env) do(c call) answer {
	e.t.Helper()
	if c.method == "" {
		c.method = http.MethodPost
	}
	req, err := http.NewRequest(c.method, e.url+c.path, bytes.NewReader(c.body))
	if err != nil {
		e.t.Fatal(err)
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode >= 400 {
		var j struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(b, &j); err != nil || j.Error == "" {
			e.t.Errorf("%s %s: status %d with a body that is not {\"error\": ...}: %q", c.method, c.path, resp.StatusCode, b)
		}
		a.errText = j.Error
	}
	return a
}

func (a answer) payloads(t testing.TB) []*commonpb.Payload {
	t.Helper()
	var ps commonpb.Payloads
	if err := protojson.Unmarshal(a.body, &ps); err != nil {
		t.Fatalf("answer is not payloads: %v: %q", err, a.body)
	}
	return ps.Payloads
}

// sealed returns n payloads sealed in-process by e's codec for namespace.
func (e *env) sealed(ns string, n int) []*commonpb.Payload {
	e.t.Helper()
	ps, err := e.codec.ForNamespace(ns).Encode(plainPayloads(n, 64))
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}

var _ = converter.NewRemotePayloadCodec
var _ = strings.Contains

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustReq(method, path string) *http.Request { return httptest.NewRequest(method, path, nil) }

func httptestServer(t *testing.T, h http.Handler) string {
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}
