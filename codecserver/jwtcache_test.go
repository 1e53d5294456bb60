package codecserver_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func fileVerifier(t *testing.T, iss *jwttest.Issuer, path string, mutate func(*codecserver.JWTConfig)) *codecserver.JWTVerifier {
	t.Helper()
	cfg := codecserver.JWTConfig{JWKSFile: path, Issuer: iss.IssuerURL(), Audience: iss.Audience(), Logger: discardLogger()}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := codecserver.NewJWTVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantStatus(t *testing.T, err error, status int, what string) {
	t.Helper()
	var he *codecserver.Error
	switch {
	case status == 200 && err != nil:
		t.Errorf("%s: %v, want success", what, err)
	case status != 200 && (!errors.As(err, &he) || he.Status != status):
		t.Errorf("%s: %v, want status %d", what, err, status)
	}
}

// TestJWKSFileReReadOnlyWhenChanged: tokens naming an unknown key ID make
// the verifier look at the file at most once a second, and read it only
// when it changed. Today's code re-read it for most of them.
func TestJWKSFileReReadOnlyWhenChanged(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	path := iss.WriteJWKSFile(t, filepath.Join(t.TempDir(), "jwks.json"))
	v := fileVerifier(t, iss, path, nil)
	start := codecserver.JWKSFileReads(v)
	unknown := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}, KeyID: "nobody-has-this"})
	for range 400 {
		_, err := v.Verify(context.Background(), unknown)
		wantStatus(t, err, 401, "unknown kid")
	}
	if n := codecserver.JWKSFileReads(v) - start; n != 0 {
		t.Errorf("400 tokens with an unknown kid read the unchanged file %d times, want 0", n)
	}
	// A rotated key reaches the file: a token signed with it verifies once
	// the rate limit lets the verifier look again, after one read.
	iss.Rotate(t, "next")
	iss.WriteJWKSFile(t, path)
	fresh := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := v.Verify(context.Background(), fresh); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated key was never picked up")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	if n := codecserver.JWKSFileReads(v) - start; n != 1 {
		t.Errorf("the changed file was read %d times, want 1", n)
	}
}

// TestTokenCache: a cached token is never accepted past its exp, before
// its nbf, or after the key set changed; the cache stays bounded.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	path := iss.WriteJWKSFile(t, filepath.Join(t.TempDir(), "jwks.json"))
	clk := &clock{now: time.Now()}
	v := fileVerifier(t, iss, path, func(c *codecserver.JWTConfig) {
		c.Now = clk.Now
		c.CacheSize = 4
		c.RefreshInterval = time.Hour
	})
	now := clk.Now()
	tok := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}, IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute)})
	for range 3 {
		id, err := v.Verify(context.Background(), tok)
		if err != nil || !id.Permissions.Allows("default", codecserver.ActionDecode) {
			t.Fatalf("Verify: %v, %v", id, err)
		}
	}
	if n := codecserver.TokenCacheLen(v); n != 1 {
		t.Fatalf("cache holds %d tokens, want 1", n)
	}
	clk.add(10*time.Minute + codecserver.DefaultJWTSkew + time.Second)
	_, err := v.Verify(context.Background(), tok)
	wantStatus(t, err, 401, "a cached token past exp+skew")
	if err != nil && !strings.Contains(err.Error(), "expired") {
		t.Errorf("error %v, want token expired", err)
	}

	// nbf in the future: refused, even after an identical token was cached
	// in its window (a different token hashes differently; the bounds of
	// the entry are what keep it out).
	clk.add(-(10*time.Minute + codecserver.DefaultJWTSkew + time.Second))
	later := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}, NotBefore: now.Add(5 * time.Minute), ExpiresAt: now.Add(time.Hour)})
	_, err = v.Verify(context.Background(), later)
	wantStatus(t, err, 401, "a token before its nbf")

	// Bounded: many distinct tokens keep at most CacheSize entries.
	for i := range 10 {
		tk := iss.Token(t, jwttest.Claims{Subject: "user" + string(rune('a'+i)), Permissions: []string{"default:read"}})
		if _, err := v.Verify(context.Background(), tk); err != nil {
			t.Fatal(err)
		}
	}
	if n := codecserver.TokenCacheLen(v); n > 4 {
		t.Errorf("cache holds %d tokens, want at most 4", n)
	}

	// The key set changes (the old key is gone): the cached token is
	// verified again and refused.
	cached := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}})
	if _, err := v.Verify(context.Background(), cached); err != nil {
		t.Fatal(err)
	}
	iss.Rotate(t, "replacement")
	iss.WriteJWKSFile(t, path)
	os.Chtimes(path, clk.Now().Add(time.Minute), clk.Now().Add(time.Minute))
	// A token naming the new key makes the verifier look at the file.
	if _, err := v.Verify(context.Background(), iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}})); err != nil {
		t.Fatalf("token under the new key: %v", err)
	}
	_, err = v.Verify(context.Background(), cached)
	wantStatus(t, err, 401, "a cached token signed by a key no longer in the set")
}

// TestTokenCacheKeepsNotBefore: a token cached inside its nbf/iat window is
// not served from the cache at a time before that window (a clock stepped
// back by NTP, a token replayed with its nbf ahead): the entry's lower
// bound is checked, not only its expiry.
func TestTokenCacheKeepsNotBefore(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	path := iss.WriteJWKSFile(t, filepath.Join(t.TempDir(), "jwks.json"))
	clk := &clock{now: time.Now()}
	v := fileVerifier(t, iss, path, func(c *codecserver.JWTConfig) {
		c.Now = clk.Now
		c.RefreshInterval = time.Hour
	})
	start := clk.Now()
	tok := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}, NotBefore: start.Add(5 * time.Minute), ExpiresAt: start.Add(time.Hour)})
	clk.add(6 * time.Minute)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("inside its window: %v", err)
	}
	if n := codecserver.TokenCacheLen(v); n != 1 {
		t.Fatalf("cache holds %d tokens, want 1", n)
	}
	clk.add(-6 * time.Minute)
	_, err := v.Verify(context.Background(), tok)
	wantStatus(t, err, 401, "a cached token before its nbf")
}

// TestTokenCacheNoticesAKeySetChange: the key set is refreshed every
// RefreshInterval even when every request hits the cache. Before, a cache
// hit returned before the verifier looked at its keys, so when the only
// clients sent cached tokens (the Web UI, the CLI) a key removed from the
// JWKS (a compromised key) kept its tokens valid until they expired.
func TestTokenCacheNoticesAKeySetChange(t *testing.T) {
	t.Parallel()
	iss := jwttest.New(t, jwttest.Options{})
	path := iss.WriteJWKSFile(t, filepath.Join(t.TempDir(), "jwks.json"))
	clk := &clock{now: time.Now()}
	v := fileVerifier(t, iss, path, func(c *codecserver.JWTConfig) {
		c.Now = clk.Now
		c.RefreshInterval = time.Minute
	})
	tok := iss.Token(t, jwttest.Claims{Permissions: []string{"default:read"}, ExpiresAt: clk.Now().Add(time.Hour)})
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	iss.Rotate(t, "replacement") // the token's key leaves the set
	iss.WriteJWKSFile(t, path)
	os.Chtimes(path, clk.Now().Add(time.Minute), clk.Now().Add(time.Minute))
	clk.add(2 * time.Minute) // past RefreshInterval
	_, err := v.Verify(context.Background(), tok)
	wantStatus(t, err, 401, "a cached token whose key left the set, after RefreshInterval")
}
