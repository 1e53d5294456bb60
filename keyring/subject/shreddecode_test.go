package subject_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// gatedStore holds an UnwrapDataKeys that has its answer until the test
// lets it return: a decode whose keyring call was under way while a shred
// ran.
type gatedStore struct {
	subject.Store
	entered chan struct{}
	gate    chan struct{}
	once    atomic.Bool // only the first call waits
}

func (g *gatedStore) UnwrapDataKeys(ctx context.Context, ns string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	s, err := g.Store.UnwrapDataKeys(ctx, ns, keys)
	if g.gate != nil && g.once.CompareAndSwap(false, true) {
		g.entered <- struct{}{}
		<-g.gate
	}
	return s, err
}

// TestInProcessShredWinsOverADecodeUnderWay: a decode that unwrapped a
// data subject key before an in-process shred, and returns after it, must
// not leave the key in the codec's cache: once Shred has returned, the
// next decode of the subject's payloads fails with ErrErased, even when
// another call noticed the shred in between.
func TestInProcessShredWinsOverADecodeUnderWay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gs := &gatedStore{Store: newDir(t)}
	kr, _ := subject.New(keyringtest.New(), gs, subject.Options{})
	c, err := codec.New(kr, codec.Options{Subject: customerOf})
	if err != nil {
		t.Fatal(err)
	}
	sealed := encodeFor(t, c, "onboard-customer-9", plain("eve"))

	gs.entered, gs.gate = make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Decode(sealed)
		done <- err
	}()
	<-gs.entered
	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "customer-9"}); err != nil {
		t.Fatal(err)
	}
	// Another call of the codec notices the new keyring generation.
	if _, err := c.Decode([]*commonpb.Payload{plain("unsealed")}); err != nil {
		t.Fatal(err)
	}
	close(gs.gate)
	<-done // it began before the shred: it may succeed

	if _, err := c.Decode(sealed); !errors.Is(err, codec.ErrErased) {
		t.Errorf("decode after the shred returned: err %v, want ErrErased (the key unwrapped by a decode under way stayed cached)", err)
	}
}
