package codec_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestExpiredSealKeysAreDropped: the seal cache has one entry per
// (namespace, data subject); entries whose data key expired are dropped as
// new ones arrive, so memory does not grow with every subject ever seen
// (and a shredded subject's data key does not stay in memory). The cache
// used to keep every entry for the life of the process.
func TestExpiredSealKeysAreDropped(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, err := codec.New(keyringtest.New(), codec.WithNow(codec.Options{DataKeyMaxAge: time.Minute}, clock))
	if err != nil {
		t.Fatal(err)
	}
	p := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}}
	for batch := 0; batch < 6; batch++ {
		for i := 0; i < 1000; i++ {
			if _, err := c.ForNamespace(fmt.Sprintf("ns-%d-%d", batch, i)).EncodeContext(context.Background(), p); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		now = now.Add(2 * time.Minute) // every key sealed so far has expired
		mu.Unlock()
	}
	if n := codec.SealKeysCached(c); n > 3000 {
		t.Errorf("%d sealing keys cached after 6,000 namespaces whose keys expired in batches of 1,000; want at most 3,000", n)
	}
}
