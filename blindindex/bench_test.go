package blindindex_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/blindindex"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring/vault"
)

const benchValue = "Ada.Lovelace@Example.com"

// BenchmarkToken compares Index.Token with a key file (normalise, per-field
// key from the cache, HMAC, hex) with a bare HMAC-SHA256 of the same
// input under a fixed key ("baseline"), interleaved in one run;
// scripts/benchratio.sh prints the ratio.
func BenchmarkToken(b *testing.B) {
	keys, _ := newKeyFile(b)
	ix := newIndex(b, keys, blindindex.Options{})
	ctx := context.Background()
	b.Run("keyfile", func(b *testing.B) {
		b.SetBytes(int64(len(benchValue)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ix.Token(ctx, "default", "email", benchValue); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("baseline", func(b *testing.B) {
		key := make([]byte, 32)
		b.SetBytes(int64(len(benchValue)))
		b.ReportAllocs()
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(benchValue))
			_ = m.Sum(nil)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
}

// countCalls counts HTTP requests whose path contains "/transit/hmac/".
type countCalls struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countCalls) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/transit/hmac/") {
		c.n.Add(1)
	}
	return c.base.RoundTrip(r)
}

// BenchmarkTokensVault1000 computes 1,000 tokens per operation with
// Index.Tokens on a real Vault (make tools first) and reports the
// transit/hmac calls per 1,000 tokens and tokens per second.
func BenchmarkTokensVault1000(b *testing.B) {
	v := testenv.StartVault(b)
	v.CreateKey(b, "bench-index")
	calls := &countCalls{base: http.DefaultTransport.(*http.Transport).Clone()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kr, err := vault.New(ctx, vault.Config{Address: v.Addr, Token: v.Token, KeyName: "bench-index", Transport: calls, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Close()
	ix := newIndex(b, kr, blindindex.Options{})
	values := make([]string, 1000)
	for i := range values {
		values[i] = fmt.Sprintf("customer-%d@example.com", i)
	}
	calls.n.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		ts, err := ix.Tokens(context.Background(), "default", "email", values)
		if err != nil || len(ts) != len(values) {
			b.Fatal(len(ts), err)
		}
	}
	b.ReportMetric(float64(calls.n.Load())/float64(b.N), "vault-calls/1000tokens")
	b.ReportMetric(float64(b.N*len(values))/b.Elapsed().Seconds(), "tokens/s")
}
