package subject_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// TestHungVaultDelaysOnlyTheEncodesThatNeedIt: a real Vault behind a
// proxy that, once switched, accepts every request and never answers.
// An encode for a new subject then waits for Vault (and fails after the
// keyring's timeout and retries); encodes of namespaces and subjects
// whose data keys are cached finish meanwhile. The codec used to hold
// its seal lock across the keyring call, so they all waited.
func TestHungVaultDelaysOnlyTheEncodesThatNeedIt(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	initVaultStore(t, v)
	target, _ := url.Parse(v.Addr)
	var hang atomic.Bool
	release := make(chan struct{})
	hung := make(chan struct{}, 100) // one per request the proxy holds
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			hung <- struct{}{}
			select { // accepts, never answers
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(release); proxy.Close() })

	kr, err := vault.New(context.Background(), vault.Config{Address: proxy.URL, Token: v.Token, KeyName: "temporal", Timeout: 500 * time.Millisecond, MaxRetries: 1, RetryWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	store, err := subject.NewVault(context.Background(), subject.VaultConfig{Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	skr, _ := subject.New(kr, store, subject.Options{})
	c, err := codec.New(skr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := []*commonpb.Payload{plain("x")}
	warm := []*codec.Codec{c, c.ForNamespace("billing"), c.ForSubject("customer-cached"), c.ForNamespace("billing").ForSubject("customer-cached")}
	for _, w := range warm {
		if _, err := w.Encode(in); err != nil {
			t.Fatal(err)
		}
	}

	hang.Store(true)
	newDone := make(chan error, 1)
	go func() {
		_, err := c.ForSubject("customer-new").Encode(in)
		newDone <- err
	}()
	// Once the new subject's encode is waiting for Vault, every cached
	// key's encode must finish before it does.
	<-hung
	for i, w := range warm {
		if _, err := w.Encode(in); err != nil {
			t.Errorf("encode %d with a cached key while Vault hangs: %v", i, err)
		}
		select {
		case err := <-newDone:
			t.Fatalf("the new subject's encode returned (%v) before encode %d with a cached key did", err, i)
		default:
		}
	}
	if err := <-newDone; !errors.Is(err, keyring.ErrUnavailable) {
		t.Errorf("the new subject's encode against a hung Vault: %v, want ErrUnavailable", err)
	}
}
