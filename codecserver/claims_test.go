package codecserver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
)

// TestJWTClaimsLikeTemporal reads tokens the way Temporal's default JWT
// claim mapper does: odd permission entries are ignored (the token is
// judged by its other entries, never 401 for them), roles are case
// insensitive, "sub" must be a string.
func TestJWTClaimsLikeTemporal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	iss := e.iss
	perms := func(v any) string {
		return iss.Bearer(t, jwttest.Claims{Extra: map[string]any{"permissions": v}})
	}
	sealed := body(t, e.sealed("default", 1))
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"an unknown role beside a good entry is ignored", perms([]any{"billing:viewer", "default:read"}), 200},
		{"an unknown role alone gives no role: 403", perms([]any{"default:reader"}), 403},
		{"a non-string entry beside a good entry is ignored", perms([]any{1, map[string]any{"a": "b"}, "default:read"}), 200},
		{"an entry without a colon is ignored", perms([]any{"admin", "default:read"}), 200},
		{"an entry with an invalid namespace is ignored", perms([]any{"bad ns:read", "default:read"}), 200},
		{"a claim that is an object gives no role: 403", perms(map[string]any{"default": "read"}), 403},
		{"a claim that is a number gives no role: 403", perms(42), 403},
		{"roles are case-insensitive", perms([]any{"default:READ"}), 200},
		{"temporal-system is the system scope", perms([]any{"temporal-system:Admin"}), 200},
		{"a role after the first colon is read as Temporal does", perms([]any{"default:read:extra"}), 403},
		{"a token without sub is 401", iss.Bearer(t, jwttest.Claims{Subject: "-", Permissions: []string{"default:read"}}), 401},
		{"a token whose sub is empty is 401", iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, Extra: map[string]any{"sub": ""}}), 401},
		{"a token with a crit header is 401", iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, Header: map[string]any{"crit": []string{"exp"}}}), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do(call{path: "/decode", body: sealed, headers: map[string]string{"Authorization": tt.auth}})
			if a.status != tt.want {
				t.Fatalf("status %d (%s), want %d", a.status, a.errText, tt.want)
			}
		})
	}
}

func TestJWTPermissionsRegexAndMaxLifetime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{jwtConf: func(c *codecserver.JWTConfig) {
		c.PermissionsRegex = `^temporal-(?P<namespace>[a-z]+)-(?P<role>[a-z]+)$`
		c.MaxLifetime = time.Hour
	}})
	now := time.Now()
	sealed := body(t, e.sealed("default", 1))
	tests := []struct {
		name string
		c    jwttest.Claims
		want int
	}{
		{"an entry the regex parses grants its role", jwttest.Claims{Permissions: []string{"temporal-default-read"}}, 200},
		{"an entry the regex does not match is ignored", jwttest.Claims{Permissions: []string{"default:read"}}, 403},
		{"a token within the maximum lifetime is fine", jwttest.Claims{Permissions: []string{"temporal-default-read"}, IssuedAt: now, ExpiresAt: now.Add(50 * time.Minute)}, 200},
		{"a token living longer than the maximum is 401", jwttest.Claims{Permissions: []string{"temporal-default-read"}, IssuedAt: now, ExpiresAt: now.Add(2 * time.Hour)}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do(call{path: "/decode", body: sealed, headers: map[string]string{"Authorization": e.iss.Bearer(t, tt.c)}})
			if a.status != tt.want {
				t.Fatalf("status %d (%s), want %d", a.status, a.errText, tt.want)
			}
		})
	}
}

func TestPermissionsRegexNeedsNamedGroups(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{`(?P<namespace>\w+)`, `(\w+):(\w+)`, `(`} {
		if _, err := codecserver.CompilePermissionsRegex(expr); err == nil || !strings.HasPrefix(err.Error(), "codecserver:") {
			t.Errorf("CompilePermissionsRegex(%q) = %v, want a codecserver error", expr, err)
		}
	}
}
