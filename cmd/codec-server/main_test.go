package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/keyring"
)

// binary is the codec-server built once for the tests that run it as a
// process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "codec-server-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "codec-server")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a codec-server process.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	url    chan string
	exited chan struct{}
	err    error
}

var urlRE = regexp.MustCompile(`msg"?[=:]"?codec server listening"?[ ,]"?url"?[=:]"?([^" ]+)`)

// start runs the binary in dir with env (added to a clean environment)
// and args. It does not wait for readiness; see ready.
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = io.Discard
	p := &proc{cmd: cmd, url: make(chan string, 1), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if m := urlRE.FindStringSubmatch(line); m != nil {
				p.url <- m[1]
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// ready waits for the listening line and a 200 from /healthz.
func (p *proc) ready(t *testing.T) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	var url string
	select {
	case url = <-p.url:
	case <-p.exited:
		t.Fatalf("codec-server exited before listening: %v\n%s", p.err, p.log())
	case <-deadline:
		t.Fatalf("codec-server not listening after 20s:\n%s", p.log())
	}
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		select {
		case <-deadline:
			t.Fatalf("%s/healthz not ready: %v\n%s", url, err, p.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logContains polls the process's stderr for want until a deadline: the
// server writes a line before it answers, but the pipe is read
// asynchronously.
func (p *proc) logContains(want string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log(), want) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond) // poll interval, bounded by the deadline
	}
	return true
}

// logLineWith returns the first stderr line containing s, or "".
func (p *proc) logLineWith(s string) string {
	for _, l := range strings.Split(p.log(), "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("codec-server did not exit:\n%s", p.log())
	}
	return p.cmd.ProcessState.ExitCode()
}

func runBinary(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

func TestEmbeddedDefault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// No flags; only the port is moved off 8081 so tests can run beside a
	// real server.
	env := []string{"CODEC_SERVER_LISTEN=127.0.0.1:0"}
	p := start(t, dir, env)
	url := p.ready(t)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("serving on %s, want loopback", url)
	}
	fi, err := os.Stat(filepath.Join(dir, ".data", "dev-keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dev key file mode %v, want 0600", fi.Mode().Perm())
	}
	for _, want := range []string{"no authentication configured", "DEVELOPMENT key file", "cors_origins=http://localhost:8233,http://127.0.0.1:8233"} {
		if !strings.Contains(p.log(), want) {
			t.Errorf("log lacks %q:\n%s", want, p.log())
		}
	}
	// The dev UI's preflight is allowed.
	for _, origin := range []string{"http://localhost:8233", "http://127.0.0.1:8233"} {
		req, _ := http.NewRequest("OPTIONS", url+"/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("preflight from %s not allowed", origin)
		}
	}
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: url})
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"hello"`)}}
	sealed, err := remote.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	// Observability is on without flags: metrics at /metrics, the audit
	// log as JSON lines on stderr.
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(mb), `codec_server_requests_total{code="200",route="/encode"} 1`) {
		t.Errorf("/metrics without flags: %d\n%s", resp.StatusCode, mb)
	}
	if !p.logContains(`"msg":"audit","log":"audit"`) || !p.logContains(`"route":"encode","count":1,"status":200,"outcome":"ok"`) {
		t.Errorf("no audit line on stderr without flags:\n%s", p.log())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0:\n%s", code, p.log())
	}
	if !strings.Contains(p.log(), "codec server stopped") {
		t.Errorf("no graceful stop in the log:\n%s", p.log())
	}

	// A second start reuses the key file: what the first sealed decodes.
	p2 := start(t, dir, env)
	url2 := p2.ready(t)
	out, err := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: url2}).Decode(sealed)
	if err != nil {
		t.Fatalf("the restarted server cannot decode: %v\n%s", err, p2.log())
	}
	if !proto.Equal(out[0], in[0]) {
		t.Error("decoded payload differs")
	}
	if !strings.Contains(p2.log(), "created=false") {
		t.Errorf("the second start did not reuse the key file:\n%s", p2.log())
	}
}

func TestSecureDefaults(t *testing.T) {
	t.Parallel()
	// With authentication the development key file is refused: those cases
	// need a real one.
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(keysFile, time.Now()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
	}{
		{"no auth on all interfaces is refused", []string{"--listen", "0.0.0.0:0"}, nil, "--insecure-no-auth"},
		{"no auth on an empty host is refused", nil, []string{"CODEC_SERVER_LISTEN=:0"}, "not a loopback address"},
		{"a wildcard CORS origin is refused", []string{"--listen", "127.0.0.1:0", "--cors-origin", "*"}, nil, `"*" is refused`},
		{"a wildcard CORS origin in the environment is refused", []string{"--listen", "127.0.0.1:0"}, []string{"CODEC_SERVER_CORS_ORIGIN=http://localhost:8233,*"}, `"*" is refused`},
		{"an HMAC JWT algorithm is refused", []string{"--listen", "127.0.0.1:0", "--keys-file", keysFile, "--jwks-file", "x", "--jwt-algorithms", "HS256"}, nil, "not allowed"},
		{"Vault without a key name is refused", []string{"--listen", "127.0.0.1:0"}, []string{"VAULT_ADDR=http://127.0.0.1:1"}, "--vault-key"},
		{"a key file and Vault together are refused", []string{"--listen", "127.0.0.1:0", "--keys-file", "k.json", "--vault-addr", "http://127.0.0.1:1", "--vault-key", "k"}, nil, "choose one"},
		{"a client permission without a client CA is refused", []string{"--listen", "127.0.0.1:0", "--client-permission", "a=default:read"}, nil, "--tls-client-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runBinary(t, t.TempDir(), tt.env, tt.args...)
			if code == 0 || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, stderr, tt.wantErr)
			}
		})
	}
	t.Run("--insecure-no-auth starts on all interfaces and says so", func(t *testing.T) {
		t.Parallel()
		// Not the loopback default: it needs a real key file.
		dir := t.TempDir()
		keys := filepath.Join(dir, "keys.json")
		if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
			t.Fatal(err)
		}
		p := start(t, dir, nil, "--listen", "0.0.0.0:0", "--insecure-no-auth", "--keys-file", keys)
		url := <-p.url
		if !strings.Contains(p.log(), "NO AUTHENTICATION") {
			t.Errorf("no loud warning:\n%s", p.log())
		}
		_ = url
	})
}

func TestKeysCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.json")
	out, stderr, code := runBinary(t, dir, nil, "keys", "new", "--file", file)
	if code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("keys new: %d %s %s", code, out, stderr)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, _, code := runBinary(t, dir, nil, "keys", "new", "--file", file); code == 0 {
		t.Error("keys new overwrote an existing file")
	}
	if out, stderr, code := runBinary(t, dir, nil, "keys", "rotate", "--file", file); code != 0 || !strings.Contains(out, "active") {
		t.Fatalf("keys rotate: %d %s %s", code, out, stderr)
	}
	// --file from the environment.
	out, stderr, code = runBinary(t, dir, []string{"CODEC_SERVER_KEYS_FILE=" + file}, "keys", "list")
	if code != 0 {
		t.Fatalf("keys list: %d %s", code, stderr)
	}
	infos, err := keyring.ListFile(file)
	if err != nil || len(infos) != 2 {
		t.Fatalf("ListFile: %v %v", infos, err)
	}
	for _, k := range infos {
		if !strings.Contains(out, k.ID) {
			t.Errorf("list lacks %s:\n%s", k.ID, out)
		}
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasSuffix(strings.TrimSpace(lines[2]), "active") {
		t.Errorf("want a header and two keys, the newest active:\n%s", out)
	}
	var f struct{ Keys []struct{ Key string } }
	b, _ := os.ReadFile(file)
	json.Unmarshal(b, &f)
	for _, k := range f.Keys {
		if k.Key == "" || strings.Contains(out, k.Key) || strings.Contains(out, k.Key[:12]) {
			t.Error("keys list shows key material")
		}
	}
	if _, _, code := runBinary(t, dir, nil, "keys", "list", "--file", filepath.Join(dir, "missing.json")); code != 1 {
		t.Errorf("list of a missing file: exit %d, want 1", code)
	}
	if _, _, code := runBinary(t, dir, nil, "keys", "bogus", "--file", file); code != 2 {
		t.Errorf("unknown keys command: exit %d, want 2", code)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), nil, "--listen", "127.0.0.1:0")
	url := p.ready(t)
	if out, stderr, code := runBinary(t, t.TempDir(), nil, "healthcheck", "--url", url+"/healthz"); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("healthcheck of a live server: %d %q %q", code, out, stderr)
	}
	// CODEC_SERVER_LISTEN names the default URL, as in the Docker image.
	addr := strings.TrimPrefix(url, "http://")
	if _, stderr, code := runBinary(t, t.TempDir(), []string{"CODEC_SERVER_LISTEN=" + addr}, "healthcheck"); code != 0 {
		t.Errorf("healthcheck from the environment: %d %q", code, stderr)
	}
	if _, _, code := runBinary(t, t.TempDir(), nil, "healthcheck", "--url", url+"/nope"); code != 1 {
		t.Errorf("healthcheck of a 404: exit %d, want 1", code)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	p.wait(t)
	if _, _, code := runBinary(t, t.TempDir(), nil, "healthcheck", "--url", url+"/healthz", "--timeout", "2s"); code != 1 {
		t.Errorf("healthcheck of a stopped server: exit %d, want 1", code)
	}
}

func TestHelpNamesEnvironment(t *testing.T) {
	t.Parallel()
	_, stderr, code := runBinary(t, t.TempDir(), nil, "--help")
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
	for _, want := range []string{"CODEC_SERVER_LISTEN", "CODEC_SERVER_CORS_ORIGIN", "VAULT_ADDR", "CODEC_SERVER_VAULT_KEY", "CODEC_SERVER_JWKS_URL", "keys new|add|promote|rotate|retire|add-legacy|list", "healthcheck"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--help lacks %s", want)
		}
	}
}

// TestInteropWithJWT runs the binary with a key file and a JWKS file, and
// checks that the SDK's remote codec round-trips through it with a bearer
// token and that it decodes what the in-process codec sealed.
func TestInteropWithJWT(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	iss := jwttest.New(t, jwttest.Options{})
	jwks := iss.WriteJWKSFile(t, filepath.Join(dir, "jwks.json"))
	auditFile := filepath.Join(dir, "audit.log")
	p := start(t, dir, []string{"CODEC_SERVER_JWT_AUDIENCE=" + iss.Audience(), "CODEC_SERVER_DEFAULT_NAMESPACE=payments"},
		"--listen", "127.0.0.1:0", "--keys-file", keys, "--jwks-file", jwks, "--jwt-issuer", iss.IssuerURL(),
		"--cors-origin", "https://ui.example.com/", "--audit-log", auditFile, "--log-format", "json")
	url := p.ready(t)

	// The origin was given with a trailing slash; the browser sends none.
	req, _ := http.NewRequest("OPTIONS", url+"/decode", nil)
	req.Header.Set("Origin", "https://ui.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://ui.example.com" || resp.Header.Get("Access-Control-Max-Age") != "600" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("preflight from the UI: %v", resp.Header)
	}
	// A refused call, as the Web UI makes it: the browser sees the 401 (CORS
	// headers on the error), and the log line with its request ID says why.
	req, _ = http.NewRequest("POST", url+"/decode", strings.NewReader(`{"payloads":[]}`))
	req.Header.Set("Origin", "https://ui.example.com")
	req.Header.Set("X-Namespace", "payments")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	eb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://ui.example.com" ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(string(eb), `"error":"missing bearer token"`) || id == "" {
		t.Errorf("decode without a token from the UI: %d %v %s", resp.StatusCode, resp.Header, eb)
	}
	if !p.logContains(`"request_id":"` + id + `"`) {
		t.Errorf("no log line with request ID %q:\n%s", id, p.log())
	} else if line := p.logLineWith(id); !strings.Contains(line, `"reason":"unauthenticated"`) || !strings.Contains(line, `"status":401`) {
		t.Errorf("the failure log line lacks the reason: %s", line)
	}
	token := iss.Bearer(t, jwttest.Claims{Permissions: []string{"payments:write"}})
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: url + "/payments",
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", token)
			return nil
		},
	})
	in := make([]*commonpb.Payload, 50)
	for i := range in {
		in[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	sealed, err := remote.Encode(in)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.log())
	}
	back, err := remote.Decode(sealed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(back[i], in[i]) {
			t.Fatalf("payload %d differs after the round trip", i)
		}
	}
	kr, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	local, _ := codec.New(kr, codec.Options{})
	localSealed, err := local.ForNamespace("payments").Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	fromLocal, err := remote.Decode(localSealed)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(fromLocal[7], in[7]) {
		t.Error("the server does not decode what the in-process codec sealed")
	}
	fromServer, err := local.ForNamespace("payments").Decode(sealed)
	if err != nil || !proto.Equal(fromServer[3], in[3]) {
		t.Errorf("the in-process codec does not decode what the server sealed: %v", err)
	}
	// --default-namespace (from the environment): the root endpoint with an
	// empty X-Namespace, as the temporal CLI calls it, means payments; the
	// token allows nothing else.
	cli := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: url,
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", token)
			r.Header.Set("X-Namespace", "")
			return nil
		},
	})
	if out, err := cli.Decode(sealed); err != nil || !proto.Equal(out[0], in[0]) {
		t.Errorf("decode with an empty X-Namespace and --default-namespace payments: %v", err)
	}
	// Without a token: 401, and the SDK client reports it.
	anon := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: url})
	if _, err := anon.Decode(sealed); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("decode without a token: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for { // the audit log is written after the answer: poll for it
		b, _ := os.ReadFile(auditFile)
		if bytes.Count(b, []byte("\n")) >= 4 {
			if bytes.Contains(b, []byte(`"n":`)) || bytes.Contains(b, []byte(strings.TrimPrefix(token, "Bearer "))) {
				t.Error("the audit log holds plaintext or a token")
			}
			if !bytes.Contains(b, []byte(`"namespace":"payments"`)) || !bytes.Contains(b, []byte(`"subject":"`+jwttest.DefaultSubject+`"`)) {
				t.Errorf("audit log:\n%s", b)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("audit log incomplete:\n%s", b)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestMainRunAndClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := filepath.Join(dir, "k.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	m := NewMain()
	var logs bytes.Buffer
	m.Stderr = &syncWriter{w: &logs}
	m.LookupEnv = func(string) (string, bool) { return "", false }
	if err := m.ParseFlags(context.Background(), []string{"--listen", "127.0.0.1:0", "--keys-file", keys, "--audit=false", "--metrics=false",
		"--read-header-timeout", "3s", "--read-timeout", "4s", "--write-timeout", "5s", "--idle-timeout", "6s"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := m.srv; s.ReadHeaderTimeout != 3*time.Second || s.ReadTimeout != 4*time.Second || s.WriteTimeout != 5*time.Second || s.IdleTimeout != 6*time.Second {
		t.Errorf("server timeouts %v %v %v %v, want 3s 4s 5s 6s", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/metrics with --metrics=false: %d, want 404", resp.StatusCode)
	}
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}}
	if _, err := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: m.URL()}).Encode(in); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(m.URL() + "/healthz"); err == nil {
		t.Error("still serving after Close")
	}
	// The audit line would have been written before the answer; Close
	// has waited for the request.
	if strings.Contains(m.Stderr.(*syncWriter).String(), `"msg":"audit"`) {
		t.Errorf("an audit line with --audit=false:\n%s", m.Stderr.(*syncWriter).String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.w)
}
