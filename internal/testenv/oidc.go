package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// OIDCClient is an OAuth client of the provider, e.g. the Temporal UI
// server.
type OIDCClient struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret"`
	RedirectURIs []string `json:"redirect_uris"`
}

// OIDCUser is a user who can sign in on the provider's login page.
type OIDCUser struct {
	// ID is the tokens' "sub".
	ID       string `json:"id"`
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	// Permissions become the access token's "permissions" claim, e.g.
	// "default:read".
	Permissions []string `json:"permissions"`
}

// OIDCProviderOptions configures [StartOIDCProvider].
type OIDCProviderOptions struct {
	Clients []OIDCClient
	Users   []OIDCUser
	// StartTimeout bounds the build and the wait for the discovery
	// document. Default: 5 minutes (the first build downloads and compiles
	// the provider library).
	StartTimeout time.Duration
}

// OIDCProvider is a running OpenID Connect provider: internal/oidcprovider,
// which is zitadel/oidc's example OpenID provider (a login page, JWT access
// tokens signed with the keys published at its JWKS, carrying the user's
// "permissions").
type OIDCProvider struct {
	// Issuer is the issuer URL, http://127.0.0.1:port; its discovery
	// document is Issuer + "/.well-known/openid-configuration".
	Issuer string

	proc *Process
}

// OIDCProviderBinary builds internal/oidcprovider (its own Go module, so
// the provider library stays out of the main go.mod) into a temporary
// folder of the test and returns the binary's path. The Go build cache makes
// every build after the first one quick.
func OIDCProviderBinary(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "oidc-provider")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(RepoRoot(t), "internal", "oidcprovider")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: build the OIDC provider (internal/oidcprovider): %v\n%s", err, b)
	}
	return out
}

// StartOIDCProvider builds and runs the OIDC provider on a free loopback
// port with opts' clients and users, waits until its discovery document
// answers and stops it when the test ends.
func StartOIDCProvider(t testing.TB, opts OIDCProviderOptions) *OIDCProvider {
	t.Helper()
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	bin := OIDCProviderBinary(t)
	cfg, err := json.Marshal(map[string]any{"clients": opts.Clients, "users": opts.Users})
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "oidc-provider.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	var last error
	for try := 0; try < 3; try++ {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		p := &OIDCProvider{Issuer: "http://" + addr}
		p.proc = StartProcess(t, "oidc-provider", exec.Command(bin, "--listen", addr, "--issuer", p.Issuer, "--config", cfgFile))
		if last = waitStatus(ctx, http.DefaultClient, p.Issuer+"/.well-known/openid-configuration", http.StatusOK, p.proc); last == nil {
			return p
		}
		p.proc.Stop()
		// The port FreePort chose was taken by someone else in between.
		if !strings.Contains(p.proc.Output(), "address already in use") {
			last = fmt.Errorf("%v\n%s", last, p.proc.Output())
			break
		}
	}
	t.Fatalf("testenv: OIDC provider not ready: %v", last)
	return nil
}

var kidRE = regexp.MustCompile(`kid=([0-9a-f]+)`)

// KeyIDs returns the kids of the signing keys made so far, oldest first, as
// the provider logged them.
func (p *OIDCProvider) KeyIDs() []string {
	var ids []string
	for _, m := range kidRE.FindAllStringSubmatch(p.proc.Output(), -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// RotateKey makes the provider sign with a new key (a new kid) from now on;
// the old key stays published. It returns the new kid.
func (p *OIDCProvider) RotateKey(ctx context.Context) (string, error) {
	before := len(p.KeyIDs())
	if err := p.proc.Signal(syscall.SIGHUP); err != nil {
		return "", fmt.Errorf("testenv: signal the OIDC provider: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if ids := p.KeyIDs(); len(ids) > before {
			return ids[len(ids)-1], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("testenv: the OIDC provider did not rotate its key: %w\n%s", ctx.Err(), p.proc.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Output returns what the provider logged so far.
func (p *OIDCProvider) Output() string { return p.proc.Output() }
