package codec_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// TestDataKeyMaxAgeEndsSealingWhileVaultIsDown: with the real Vault
// stopped, a codec keeps sealing under its cached data key until
// DataKeyMaxAge has passed, then fails with ErrUnavailable; decoding keeps
// working from the cache.
func TestDataKeyMaxAgeEndsSealingWhileVaultIsDown(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t)
	v.CreateKey(t, "outage")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kr, err := vault.New(ctx, vault.Config{Address: v.Addr, Token: v.Token, KeyName: "outage", Timeout: time.Second, MaxRetries: 1, RetryWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })

	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	c, err := codec.New(kr, codec.WithNow(codec.Options{DataKeyMaxUses: 1000, DataKeyMaxAge: time.Minute}, clock))
	if err != nil {
		t.Fatal(err)
	}
	ps := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"outage"`)}}
	sealed, err := c.Encode(ps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(sealed); err != nil { // caches the data key for decoding
		t.Fatal(err)
	}

	v.Stop()
	now.Add(int64(30 * time.Second))
	if _, err := c.Encode(ps); err != nil {
		t.Fatalf("encode within DataKeyMaxAge with Vault down: %v", err)
	}
	now.Add(int64(31 * time.Second))
	if _, err := c.Encode(ps); !errors.Is(err, keyring.ErrUnavailable) {
		t.Fatalf("encode past DataKeyMaxAge with Vault down: %v, want ErrUnavailable", err)
	}
	got, err := c.Decode(sealed)
	if err != nil {
		t.Fatalf("decode from the cache with Vault down: %v", err)
	}
	if !proto.Equal(got[0], ps[0]) {
		t.Fatalf("decoded %v, want %v", got[0], ps[0])
	}
}

// TestNewRefusesSubjectWithoutSubjectKeys: Options.Subject over a keyring
// that holds no data subject keys is a misconfiguration, refused by New
// rather than at the first workflow start.
func TestNewRefusesSubjectWithoutSubjectKeys(t *testing.T) {
	t.Parallel()
	_, err := codec.New(keyringtest.New(), codec.Options{Subject: func(converter.SerializationContext) string { return "customer-1" }})
	if err == nil || !strings.Contains(err.Error(), "keyring.SubjectKeyring") {
		t.Fatalf("New: %v, want an error naming keyring.SubjectKeyring", err)
	}
}
