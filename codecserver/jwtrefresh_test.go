package codecserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/jwttest"
)

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
