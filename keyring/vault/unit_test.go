package vault_test

// Unit tests against an httptest server that answers like Vault, for the
// faults a real dev-mode Vault cannot produce on demand (5xx, slowness,
// malformed answers) and for Kubernetes auth, which needs a cluster.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

const fakeToken = "hvs.fake-secret-token"

var (
	fakeDEK        = base64.StdEncoding.EncodeToString(make([]byte, 32))
	fakeCiphertext = "vault:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 60))
)

// fakeVault answers health, token lookup and key reads like an unsealed
// Vault and hands every other request to handle. It counts requests by
// path.
type fakeVault struct {
	*httptest.Server
	mu     sync.Mutex
	calls  map[string]int
	tokens []string // X-Vault-Token of every transit request
}

func newFakeVault(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, attempt int)) *fakeVault {
	t.Helper()
	f := &fakeVault{calls: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/v1/")
		f.mu.Lock()
		f.calls[p]++
		n := f.calls[p]
		if strings.HasPrefix(p, "transit/") {
			f.tokens = append(f.tokens, r.Header.Get("X-Vault-Token"))
		}
		f.mu.Unlock()
		switch p {
		case "sys/health":
			fmt.Fprint(w, `{"initialized":true,"sealed":false,"standby":false}`)
		case "auth/token/lookup-self":
			fmt.Fprint(w, `{"data":{"ttl":0,"renewable":false}}`)
		case "transit/keys/k":
			fmt.Fprint(w, `{"data":{"supports_decryption":true,"derived":false,"latest_version":1}}`)
		default:
			handle(w, r, n)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeVault) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func openFake(t *testing.T, f *fakeVault, cfg vault.Config) (*vault.Keyring, error) {
	t.Helper()
	cfg.Address = f.URL
	if cfg.Token == "" && cfg.AppRoleRoleID == "" && cfg.KubernetesRole == "" {
		cfg.Token = fakeToken
	}
	if cfg.KeyName == "" {
		cfg.KeyName = "k"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second // generous: CI machines are loaded
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = time.Millisecond
	}
	cfg.Logger = testLogger(t)
	kr, err := vault.New(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { kr.Close() })
	return kr, nil
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	const ok = 200
	cases := []struct {
		name     string
		status   int
		body     string
		slow     bool
		want     error // nil: no keyring sentinel
		attempts int
		mention  string
	}{
		{"403 is a permission error, not retried", 403, `{"errors":["1 error occurred:\n\t* permission denied\n\n"]}`, false, keyring.ErrPermission, 1, "vault answered 403: permission denied"},
		{"404 is an unknown key", 404, `{"errors":[]}`, false, keyring.ErrUnknownKey, 1, "vault answered 404"},
		{"a missing transit key is an unknown key", 400, `{"errors":["encryption key not found"]}`, false, keyring.ErrUnknownKey, 1, "encryption key not found"},
		{"another 400 is not retried", 400, `{"errors":["invalid bits"]}`, false, nil, 1, "invalid bits"},
		{"sealed is unavailable and retried", 503, `{"errors":["Vault is sealed"]}`, false, keyring.ErrUnavailable, 3, "Vault is sealed"},
		{"500 is unavailable and retried", 500, `{"errors":["internal error"]}`, false, keyring.ErrUnavailable, 3, "internal error"},
		{"429 is unavailable and retried", 429, `{"errors":["rate limit quota exceeded"]}`, false, keyring.ErrUnavailable, 3, "rate limit"},
		{"a proxy's HTML 502 is unavailable", 502, `<html>bad gateway</html>`, false, keyring.ErrUnavailable, 3, "bad gateway"},
		{"a slow vault times out and is retried", ok, "", true, keyring.ErrUnavailable, 3, "no answer from vault within 300ms"},
		{"a short data key is refused", ok, `{"data":{"plaintext":"AAAA","ciphertext":"` + fakeCiphertext + `"}}`, false, nil, 1, "data key is 3 bytes, want 32"},
		{"a ciphertext without version is refused", ok, `{"data":{"plaintext":"` + fakeDEK + `","ciphertext":"vault:AAAA"}}`, false, nil, 1, "vault:vN:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if tc.slow {
					select {
					case <-r.Context().Done():
					case <-time.After(time.Second):
					}
					return
				}
				reply(w, tc.status, tc.body)
			})
			cfg := vault.Config{}
			if tc.slow {
				cfg.Timeout = 300 * time.Millisecond
			}
			kr, err := openFake(t, f, cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = kr.NewDataKey(context.Background(), "")
			if err == nil {
				t.Fatal("NewDataKey succeeded")
			}
			for _, s := range []error{keyring.ErrPermission, keyring.ErrUnknownKey, keyring.ErrUnavailable, keyring.ErrUnwrap} {
				if errors.Is(err, s) != (s == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, !(s == tc.want))
				}
			}
			msg := err.Error()
			for _, want := range []string{"vault: ", `datakey with key "k"`, tc.mention} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, fakeToken) || strings.Contains(msg, fakeDEK) {
				t.Errorf("error contains the token or the key: %q", msg)
			}
			if got := f.count("transit/datakey/plaintext/k"); got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	failTwice := func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= 2 {
			reply(w, 503, `{"errors":["Vault is sealed"]}`)
			return
		}
		reply(w, 200, `{"data":{"plaintext":"`+fakeDEK+`","ciphertext":"`+fakeCiphertext+`"}}`)
	}
	t.Run("transient failures are retried until success", func(t *testing.T) {
		t.Parallel()
		f := newFakeVault(t, failTwice)
		kr, err := openFake(t, f, vault.Config{})
		if err != nil {
			t.Fatal(err)
		}
		dk, err := kr.NewDataKey(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if dk.KeyID != "vault/transit/k/v1" || dk.Key.Len() != 32 || string(dk.Wrapped) != fakeCiphertext {
			t.Fatalf("data key %s %d %q", dk.KeyID, dk.Key.Len(), dk.Wrapped)
		}
		if got := f.count("transit/datakey/plaintext/k"); got != 3 {
			t.Fatalf("%d attempts, want 3", got)
		}
	})
	t.Run("MaxRetries -1 disables retries", func(t *testing.T) {
		t.Parallel()
		f := newFakeVault(t, failTwice)
		kr, err := openFake(t, f, vault.Config{MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kr.NewDataKey(context.Background(), ""); !errors.Is(err, keyring.ErrUnavailable) {
			t.Fatalf("NewDataKey: %v", err)
		}
		if got := f.count("transit/datakey/plaintext/k"); got != 1 {
			t.Fatalf("%d attempts, want 1", got)
		}
	})
	t.Run("a canceled context stops retrying", func(t *testing.T) {
		t.Parallel()
		f := newFakeVault(t, failTwice)
		kr, err := openFake(t, f, vault.Config{RetryWait: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err = kr.NewDataKey(ctx, "")
		if !errors.Is(err, keyring.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("NewDataKey: %v, want ErrUnavailable and DeadlineExceeded", err)
		}
	})
	t.Run("an unreachable vault is unavailable", func(t *testing.T) {
		t.Parallel()
		f := newFakeVault(t, failTwice)
		f.Close()
		_, err := openFake(t, f, vault.Config{})
		if !errors.Is(err, keyring.ErrUnavailable) {
			t.Fatalf("New: %v, want ErrUnavailable", err)
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base := 100 * time.Millisecond
	for attempt, full := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, vault.MaxRetryWait, vault.MaxRetryWait} {
		for range 100 {
			if d := vault.Backoff(base, attempt); d < full/2 || d > full {
				t.Fatalf("Backoff(%s, %d) = %s, want in [%s, %s]", base, attempt, d, full/2, full)
			}
		}
	}
	if d := vault.Backoff(base, 1000); d > vault.MaxRetryWait {
		t.Fatalf("Backoff after 1000 attempts = %s", d)
	}
}

func TestBatchItemErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		item string
		want error
	}{
		{"a failed authentication is an unwrap error", "cipher: message authentication failed", keyring.ErrUnwrap},
		{"a version below min_decryption_version is an unknown key", "ciphertext or signature version is disallowed by policy (too old)", keyring.ErrUnknownKey},
		{"a version vault does not have is an unknown key", "invalid ciphertext: version is too new", keyring.ErrUnknownKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				var in struct {
					BatchInput []struct{ Ciphertext string } `json:"batch_input"`
				}
				json.NewDecoder(r.Body).Decode(&in)
				if len(in.BatchInput) != 2 {
					reply(w, 400, `{"errors":["want 2 items"]}`)
					return
				}
				item, _ := json.Marshal(tc.item)
				reply(w, 400, `{"data":{"batch_results":[{"plaintext":"`+fakeDEK+`"},{"plaintext":"","error":`+string(item)+`}]}}`)
			})
			kr, err := openFake(t, f, vault.Config{})
			if err != nil {
				t.Fatal(err)
			}
			keys := []keyring.WrappedKey{
				{KeyID: "vault/transit/k/v1", Wrapped: []byte(fakeCiphertext)},
				{KeyID: "vault/transit/k/v1", Wrapped: []byte("vault:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 61)))},
			}
			_, err = kr.UnwrapDataKeys(context.Background(), "", keys)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.item) {
				t.Fatalf("UnwrapDataKeys: %v, want %v with Vault's reason", err, tc.want)
			}
			if i, ok := keyring.FailedKey(err); !ok || i != 1 {
				t.Fatalf("FailedKey = %d, %v; want the second key, 1", i, ok)
			}
		})
	}
	t.Run("a batch answer with too few results is an error", func(t *testing.T) {
		t.Parallel()
		f := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			reply(w, 200, `{"data":{"batch_results":[]}}`)
		})
		kr, err := openFake(t, f, vault.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kr.UnwrapDataKeys(context.Background(), "", []keyring.WrappedKey{{KeyID: "vault/transit/k/v1", Wrapped: []byte(fakeCiphertext)}}); err == nil || !strings.Contains(err.Error(), "0 results for 1 items") {
			t.Fatalf("UnwrapDataKeys: %v", err)
		}
	})
}

func TestReloginOnInvalidToken(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	logins := 0
	f := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/v1/auth/approle/login":
			var in map[string]string
			json.NewDecoder(r.Body).Decode(&in)
			if in["role_id"] != "role" || in["secret_id"] != "secret" {
				reply(w, 400, `{"errors":["invalid role or secret ID"]}`)
				return
			}
			logins++
			reply(w, 200, fmt.Sprintf(`{"auth":{"client_token":"tok-%d","lease_duration":3600,"renewable":false}}`, logins))
		default:
			if r.Header.Get("X-Vault-Token") != "tok-2" {
				reply(w, 403, `{"errors":["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]}`)
				return
			}
			if r.URL.Path == "/v1/transit/keys/other" {
				reply(w, 200, `{"data":{"supports_decryption":true}}`)
				return
			}
			reply(w, 200, `{"data":{"plaintext":"`+fakeDEK+`","ciphertext":"`+fakeCiphertext+`"}}`)
		}
	})
	// New logs in (tok-1); its key check is refused for an invalid token,
	// logs in again (tok-2) and retries; NewDataKey uses tok-2.
	kr, err := openFake(t, f, vault.Config{AppRoleRoleID: "role", AppRoleSecretID: "secret", KeyName: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.NewDataKey(context.Background(), ""); err != nil {
		t.Fatalf("NewDataKey: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logins != 2 {
		t.Fatalf("%d logins, want 2", logins)
	}
	if got := fmt.Sprint(f.tokens); got != "[tok-1 tok-2 tok-2]" {
		t.Fatalf("tokens on transit calls: %s, want [tok-1 tok-2 tok-2]", got)
	}
}

func TestKubernetesAuth(t *testing.T) {
	t.Parallel()
	jwt := "eyJhbGciOiJSUzI1NiJ9.fake-service-account-token.sig"
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenPath, []byte(jwt), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/v1/auth/k8s-prod/login":
			var in map[string]string
			json.NewDecoder(r.Body).Decode(&in)
			if in["role"] != "codec" || in["jwt"] != jwt {
				reply(w, 403, `{"errors":["permission denied"]}`)
				return
			}
			reply(w, 200, `{"auth":{"client_token":"k8s-token","lease_duration":3600,"renewable":false}}`)
		default:
			if r.Header.Get("X-Vault-Token") != "k8s-token" {
				reply(w, 403, `{"errors":["permission denied"]}`)
				return
			}
			reply(w, 200, `{"data":{"plaintext":"`+fakeDEK+`","ciphertext":"`+fakeCiphertext+`"}}`)
		}
	})
	t.Run("logs in with the service account token", func(t *testing.T) {
		t.Parallel()
		kr, err := openFake(t, f, vault.Config{KubernetesRole: "codec", KubernetesMount: "k8s-prod", KubernetesTokenPath: tokenPath})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kr.NewDataKey(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a wrong role is a permission error", func(t *testing.T) {
		t.Parallel()
		_, err := openFake(t, f, vault.Config{KubernetesRole: "other", KubernetesMount: "k8s-prod", KubernetesTokenPath: tokenPath})
		if !errors.Is(err, keyring.ErrPermission) || !strings.Contains(err.Error(), "kubernetes login") || strings.Contains(err.Error(), jwt) {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("the token file is read again at each login", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "token")
		os.WriteFile(path, []byte("jwt-1"), 0o600)
		var mu sync.Mutex
		jwts := []string{}
		rot := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			mu.Lock()
			defer mu.Unlock()
			if r.URL.Path == "/v1/auth/kubernetes/login" {
				var in map[string]string
				json.NewDecoder(r.Body).Decode(&in)
				jwts = append(jwts, in["jwt"])
				reply(w, 200, `{"auth":{"client_token":"for-`+in["jwt"]+`","lease_duration":3600}}`)
				return
			}
			if r.Header.Get("X-Vault-Token") != "for-jwt-2" {
				reply(w, 403, `{"errors":["permission denied","invalid token"]}`)
				return
			}
			reply(w, 200, `{"data":{"plaintext":"`+fakeDEK+`","ciphertext":"`+fakeCiphertext+`"}}`)
		})
		kr, err := openFake(t, rot, vault.Config{KubernetesRole: "codec", KubernetesTokenPath: path})
		if err != nil {
			t.Fatal(err)
		}
		// kubelet rotates the token; the old Vault token stops working.
		os.WriteFile(path, []byte("jwt-2"), 0o600)
		if _, err := kr.NewDataKey(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(jwts) != "[jwt-1 jwt-2]" {
			t.Fatalf("logins with %q, want [jwt-1 jwt-2]", jwts)
		}
	})
	t.Run("a missing token file is named", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(dir, "missing")
		_, err := openFake(t, f, vault.Config{KubernetesRole: "codec", KubernetesMount: "k8s-prod", KubernetesTokenPath: missing})
		if !errors.Is(err, keyring.ErrPermission) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("New: %v", err)
		}
	})
}

// TestEnvironmentIgnored checks that the library takes nothing from VAULT_*
// variables: the cmd layer maps them onto Config.
func TestEnvironmentIgnored(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "env-token")
	t.Setenv("VAULT_NAMESPACE", "env-namespace")
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	var seen []string
	var mu sync.Mutex
	f := newFakeVault(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Vault-Token")+"|"+r.Header.Get("X-Vault-Namespace"))
		mu.Unlock()
		reply(w, 200, `{"data":{"plaintext":"`+fakeDEK+`","ciphertext":"`+fakeCiphertext+`"}}`)
	})
	kr, err := openFake(t, f, vault.Config{Namespace: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.NewDataKey(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != fakeToken+"|team-a" {
		t.Fatalf("token|namespace sent: %q, want %q", seen, fakeToken+"|team-a")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	base := vault.Config{Address: "http://127.0.0.1:8200", Token: "t", KeyName: "k"}
	cases := []struct {
		name   string
		modify func(*vault.Config)
		want   string
	}{
		{"no address", func(c *vault.Config) { c.Address = "" }, "address"},
		{"address without scheme", func(c *vault.Config) { c.Address = "127.0.0.1:8200" }, "address"},
		{"no key name", func(c *vault.Config) { c.KeyName = "" }, "key name"},
		{"key name with a slash", func(c *vault.Config) { c.KeyName = "a/b" }, "key name"},
		{"template with a bad character", func(c *vault.Config) { c.KeyName = "t {namespace}" }, "key name"},
		{"mount with ..", func(c *vault.Config) { c.Mount = "a/../b" }, "mount"},
		{"no auth", func(c *vault.Config) { c.Token = "" }, "exactly one"},
		{"two auth methods", func(c *vault.Config) { c.AppRoleRoleID = "r"; c.AppRoleSecretID = "s" }, "exactly one"},
		{"approle without secret ID", func(c *vault.Config) { c.Token = ""; c.AppRoleRoleID = "r" }, "secret ID"},
		{"negative timeout", func(c *vault.Config) { c.Timeout = -time.Second }, "negative"},
		{"CA file missing", func(c *vault.Config) { c.CACert = "/nonexistent/ca.pem" }, "/nonexistent/ca.pem"},
		{"CA with a custom transport", func(c *vault.Config) { c.CACert = "x.pem"; c.Transport = newCounter() }, "CACert"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tc.modify(&cfg)
			_, err := vault.New(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "vault: ") {
				t.Fatalf("New: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
