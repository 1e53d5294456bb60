package codec_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

func keyIDOf(p *commonpb.Payload) string { return string(p.GetMetadata()["encryption-key-id"]) }

// TestRotationReachesNewPayloadsAtOnce rotates a real key file and reloads
// it with the codec's default options: the next payload must use the new
// key, not the cached data key of the old one for up to DataKeyMaxAge.
func TestRotationReachesNewPayloadsAtOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keyring.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCodec(t, kr, codec.Options{}) // default DataKeyMaxAge and MaxUses
	before, err := c.Encode([]*commonpb.Payload{jsonPayload(`"before"`)})
	if err != nil {
		t.Fatal(err)
	}
	info, err := keyring.RotateFile(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := kr.Reload(); err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
	after, err := c.Encode([]*commonpb.Payload{jsonPayload(`"after"`), jsonPayload(`"after 2"`)})
	if err != nil {
		t.Fatal(err)
	}
	want := keyring.FileKeyIDPrefix + info.ID
	for i, p := range after {
		if got := keyIDOf(p); got != want {
			t.Errorf("payload %d sealed after the reload under %q, want the new key %q (old: %q)", i, got, want, keyIDOf(before[0]))
		}
	}
}

func TestRotationWithInMemoryKeyringUsesNewKeyAtOnce(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{})
	if _, err := c.Encode([]*commonpb.Payload{jsonPayload(`1`)}); err != nil {
		t.Fatal(err)
	}
	k2 := kr.Rotate()
	out, err := c.Encode([]*commonpb.Payload{jsonPayload(`2`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := keyIDOf(out[0]); got != k2 {
		t.Fatalf("key id after rotation = %q, want %q", got, k2)
	}
	calls := kr.NewDataKeyCalls()
	if _, err := c.Encode([]*commonpb.Payload{jsonPayload(`3`)}); err != nil {
		t.Fatal(err)
	}
	if kr.NewDataKeyCalls() != calls {
		t.Fatal("encode without a rotation asked the keyring for a new data key")
	}
}

func TestNewRefusesOutOfBoundsOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts codec.Options
		ok   bool
	}{
		{"DataKeyMaxUses at the NIST limit 2^32", codec.Options{DataKeyMaxUses: 1 << 32}, true},
		{"DataKeyMaxUses above 2^32", codec.Options{DataKeyMaxUses: 1<<32 + 1}, false},
		{"DataKeyMaxAge of 24 hours", codec.Options{DataKeyMaxAge: 24 * time.Hour}, true},
		{"DataKeyMaxAge above 24 hours", codec.Options{DataKeyMaxAge: 24*time.Hour + time.Second}, false},
		{"DataKeyMaxAge of a year", codec.Options{DataKeyMaxAge: 365 * 24 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := codec.New(keyringtest.New(), tt.opts)
			if tt.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// TestUnwrapErrorNamesTheFailingPayload decodes a batch whose second
// payload's key is gone: the error must name payload 1, not payload 0.
func TestUnwrapErrorNamesTheFailingPayload(t *testing.T) {
	t.Parallel()
	kr := keyringtest.New()
	c := newCodec(t, kr, codec.Options{})
	p0, err := c.Encode([]*commonpb.Payload{jsonPayload(`0`)})
	if err != nil {
		t.Fatal(err)
	}
	k2 := kr.Rotate()
	p1, err := c.Encode([]*commonpb.Payload{jsonPayload(`1`)})
	if err != nil {
		t.Fatal(err)
	}
	kr.Forget(k2)
	_, err = newCodec(t, kr, codec.Options{}).DecodeContext(context.Background(), []*commonpb.Payload{p0[0], jsonPayload(`"plain"`), p1[0]})
	if !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("decode: %v, want ErrUnknownKey", err)
	}
	if !strings.Contains(err.Error(), "decode payload 2:") {
		t.Fatalf("error %q does not name payload 2", err)
	}
}
