package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// VaultRootToken is the root token of every Vault that StartVault starts.
// It is for tests only.
const VaultRootToken = "root"

// vaultStartTimeout bounds how long a dev-mode Vault may take to answer.
const vaultStartTimeout = 90 * time.Second

// Vault is a real Vault server in -dev mode (in memory, unsealed) on a
// loopback port, with the transit engine enabled at "transit".
type Vault struct {
	Addr   string // e.g. http://127.0.0.1:43123 (https:// with VaultTLS)
	Token  string // the root token, VaultRootToken
	CACert string // with VaultTLS: PEM file of the CA that signed Vault's certificate

	client   *http.Client
	cmd      *exec.Cmd
	logPath  string
	exited   chan struct{}
	stopOnce sync.Once
}

// VaultOption changes how StartVault starts Vault.
type VaultOption func(*vaultOptions)

type vaultOptions struct{ tls bool }

// VaultTLS serves Vault over HTTPS with a certificate from a fresh CA
// (Vault's -dev-tls); Vault.CACert names the CA file.
func VaultTLS() VaultOption { return func(o *vaultOptions) { o.tls = true } }

// StartVault starts bin/vault in -dev mode on a free loopback port with the
// root token VaultRootToken, enables transit at "transit", waits until it
// is ready and stops it when the test ends. A missing bin/vault fails the
// test with the advice to run `make tools`.
func StartVault(t testing.TB, opts ...VaultOption) *Vault {
	t.Helper()
	var o vaultOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := Binary(t, "vault")
	var last error
	for try := 0; try < 3; try++ {
		v, err := startVault(t, bin, o)
		if err == nil {
			v.mustWrite(t, "sys/mounts/transit", map[string]any{"type": "transit"})
			return v
		}
		last = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("testenv: start vault: %v", last)
	return nil
}

func startVault(t testing.TB, bin string, o vaultOptions) (*Vault, error) {
	dir := t.TempDir()
	port := FreePort(t)
	v := &Vault{
		Addr:    fmt.Sprintf("http://127.0.0.1:%d", port),
		Token:   VaultRootToken,
		client:  &http.Client{Timeout: 30 * time.Second},
		logPath: filepath.Join(dir, "vault.log"),
		exited:  make(chan struct{}),
	}
	logFile, err := os.Create(v.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	v.cmd = exec.Command(bin, "server", "-dev",
		"-dev-root-token-id="+VaultRootToken,
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port),
		"-dev-no-store-token",
		"-log-level=warn",
	)
	if o.tls {
		v.Addr = fmt.Sprintf("https://127.0.0.1:%d", port)
		v.CACert = filepath.Join(dir, "vault-ca.pem")
		v.cmd.Args = append(v.cmd.Args, "-dev-tls", "-dev-tls-cert-dir="+dir)
	}
	// A clean environment: no VAULT_* from the developer's shell, and a
	// HOME of its own so nothing touches ~/.vault-token.
	v.cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	v.cmd.Dir = dir
	v.cmd.Stdout, v.cmd.Stderr = logFile, logFile
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	go func() {
		v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		v.Stop()
		if t.Failed() {
			t.Logf("testenv: vault log (%s):\n%s", v.Addr, v.LogTail(4000))
		}
	})
	if err := v.waitReady(); err != nil {
		v.Stop()
		return nil, fmt.Errorf("%w\n%s", err, v.LogTail(2000))
	}
	return v, nil
}

// waitReady polls sys/health until Vault answers 200 (initialized,
// unsealed, active), the process exits or the deadline passes.
func (v *Vault) waitReady() error {
	deadline := time.Now().Add(vaultStartTimeout)
	var last error
	for time.Now().Before(deadline) {
		if v.CACert != "" && v.client.Transport == nil {
			// Vault writes its CA file as it starts.
			if pem, err := os.ReadFile(v.CACert); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pem) {
					v.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
				}
			}
		}
		resp, err := v.get(v.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("sys/health answered %d", resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-v.exited:
			return fmt.Errorf("vault exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("vault at %s not ready after %s: %v", v.Addr, vaultStartTimeout, last)
}

// Stop kills Vault and waits for it to exit. Later calls do nothing. Tests
// use it to take Vault away mid-run; StartVault also calls it at the end.
func (v *Vault) Stop() {
	v.stopOnce.Do(func() {
		if v.cmd.Process != nil {
			v.cmd.Process.Kill()
			<-v.exited
		}
	})
}

// LogTail returns the last n bytes of Vault's log.
func (v *Vault) LogTail(n int) string {
	b, _ := os.ReadFile(v.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Request calls Vault's HTTP API at /v1/<path> with token (the root token
// when empty) and returns the status and the decoded JSON answer.
func (v *Vault) Request(method, path, token string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, v.Addr+"/v1/"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if token == "" {
		token = v.Token
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := v.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out, nil
}

func (v *Vault) must(t testing.TB, method, path string, body any) map[string]any {
	t.Helper()
	status, out, err := v.Request(method, path, "", body)
	if err != nil {
		t.Fatalf("testenv: vault %s %s: %v", method, path, err)
	}
	if status >= 300 {
		t.Fatalf("testenv: vault %s %s: status %d: %v", method, path, status, out["errors"])
	}
	return out
}

func (v *Vault) mustWrite(t testing.TB, path string, body any) map[string]any {
	t.Helper()
	return v.must(t, http.MethodPost, path, body)
}

// Write POSTs body to /v1/<path> with the root token and fails the test
// unless Vault answers 2xx. It returns the answer's "data" object.
func (v *Vault) Write(t testing.TB, path string, body any) map[string]any {
	t.Helper()
	data, _ := v.mustWrite(t, path, body)["data"].(map[string]any)
	return data
}

// Read GETs /v1/<path> with the root token and returns the "data" object.
func (v *Vault) Read(t testing.TB, path string) map[string]any {
	t.Helper()
	data, _ := v.must(t, http.MethodGet, path, nil)["data"].(map[string]any)
	return data
}

// CreateKey creates the aes256-gcm96 transit key name under "transit".
func (v *Vault) CreateKey(t testing.TB, name string) {
	t.Helper()
	v.mustWrite(t, "transit/keys/"+name, map[string]any{"type": "aes256-gcm96"})
}

// RotateKey adds a new version to the transit key name and returns the
// latest version.
func (v *Vault) RotateKey(t testing.TB, name string) int {
	t.Helper()
	v.mustWrite(t, "transit/keys/"+name+"/rotate", nil)
	latest, _ := v.Read(t, "transit/keys/"+name)["latest_version"].(float64)
	return int(latest)
}

// WritePolicy writes the ACL policy name with the given HCL rules.
func (v *Vault) WritePolicy(t testing.TB, name, hcl string) {
	t.Helper()
	v.must(t, http.MethodPut, "sys/policies/acl/"+name, map[string]any{"policy": hcl})
}

// TransitPolicy returns the minimal policy for the keyring on the given
// transit keys (docs/VAULT.md): datakey, decrypt and read of each key.
func TransitPolicy(keys ...string) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "path \"transit/datakey/plaintext/%s\" { capabilities = [\"update\"] }\n", k)
		fmt.Fprintf(&b, "path \"transit/decrypt/%s\" { capabilities = [\"update\"] }\n", k)
		fmt.Fprintf(&b, "path \"transit/keys/%s\" { capabilities = [\"read\"] }\n", k)
	}
	return b.String()
}

// TokenOptions describes a token for CreateToken.
type TokenOptions struct {
	Policies        []string
	TTL             string // e.g. "3s"; empty: Vault's default
	ExplicitMaxTTL  string // e.g. "1h"
	Renewable       bool
	NoDefaultPolicy bool
}

// CreateToken creates a token (auth/token/create) and returns it.
func (v *Vault) CreateToken(t testing.TB, o TokenOptions) string {
	t.Helper()
	body := map[string]any{
		"policies":          o.Policies,
		"renewable":         o.Renewable,
		"no_default_policy": o.NoDefaultPolicy,
	}
	if o.TTL != "" {
		body["ttl"] = o.TTL
	}
	if o.ExplicitMaxTTL != "" {
		body["explicit_max_ttl"] = o.ExplicitMaxTTL
	}
	out := v.mustWrite(t, "auth/token/create", body)
	auth, _ := out["auth"].(map[string]any)
	token, _ := auth["client_token"].(string)
	if token == "" {
		t.Fatalf("testenv: vault token create: no token in answer")
	}
	return token
}

// AppRoleOptions describes an AppRole role for EnableAppRole.
type AppRoleOptions struct {
	Policies    []string
	TokenTTL    string // e.g. "3s"
	TokenMaxTTL string // e.g. "6s"
}

// EnableAppRole enables AppRole auth at "approle" (once per Vault), creates
// role and returns its role ID and a new secret ID.
func (v *Vault) EnableAppRole(t testing.TB, role string, o AppRoleOptions) (roleID, secretID string) {
	t.Helper()
	status, _, err := v.Request(http.MethodGet, "sys/auth/approle", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if status == http.StatusBadRequest || status == http.StatusNotFound {
		v.mustWrite(t, "sys/auth/approle", map[string]any{"type": "approle"})
	}
	body := map[string]any{"token_policies": o.Policies}
	if o.TokenTTL != "" {
		body["token_ttl"] = o.TokenTTL
	}
	if o.TokenMaxTTL != "" {
		body["token_max_ttl"] = o.TokenMaxTTL
	}
	v.mustWrite(t, "auth/approle/role/"+role, body)
	roleID, _ = v.Read(t, "auth/approle/role/"+role+"/role-id")["role_id"].(string)
	secretID, _ = v.Write(t, "auth/approle/role/"+role+"/secret-id", nil)["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatalf("testenv: vault approle %s: no role or secret ID", role)
	}
	return roleID, secretID
}

// Seal seals Vault. A dev-mode Vault stays sealed until the test ends.
func (v *Vault) Seal(t testing.TB) {
	t.Helper()
	v.must(t, http.MethodPut, "sys/seal", nil)
}

// get makes a GET with a short timeout, for polling.
func (v *Vault) get(url string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	return resp, nil
}
