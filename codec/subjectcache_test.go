package codec_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestDefaultSubjectKeyMaxAgeIsOneMinute pins the bound docs/ERASURE.md
// promises ("1 minute"): a process that cached a subject's data key
// before a shred may use it for at most that long.
func TestDefaultSubjectKeyMaxAgeIsOneMinute(t *testing.T) {
	t.Parallel()
	if codec.DefaultSubjectKeyMaxAge != time.Minute {
		t.Fatalf("DefaultSubjectKeyMaxAge = %v, docs/ERASURE.md says 1 minute", codec.DefaultSubjectKeyMaxAge)
	}
}

// blockingKeyring hands out subject data keys like a subject.Keyring,
// but the call for subject "slow" waits until release is closed: a key
// service that accepts and never answers, for that subject only.
type blockingKeyring struct {
	*subject.Keyring
	entered chan struct{}
	release chan struct{}
}

func (b *blockingKeyring) NewSubjectDataKey(ctx context.Context, ns, subj string) (keyring.DataKey, error) {
	if subj == "slow" {
		close(b.entered)
		select {
		case <-b.release:
		case <-ctx.Done():
			return keyring.DataKey{}, ctx.Err()
		}
	}
	return b.Keyring.NewSubjectDataKey(ctx, ns, subj)
}

func subjectKeyring(t testing.TB) *subject.Keyring {
	t.Helper()
	d, err := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := subject.New(keyringtest.New(), d, subject.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestSealDoesNotWaitForAnotherKeysKeyringCall: while the keyring hangs
// on one subject's new key, encodes of other namespaces, of other
// subjects and of subjects whose key is cached go on. The seal cache used
// to hold its one lock across the keyring call, so one hung call stalled
// every encode of the process.
func TestSealDoesNotWaitForAnotherKeysKeyringCall(t *testing.T) {
	t.Parallel()
	kr := &blockingKeyring{Keyring: subjectKeyring(t), entered: make(chan struct{}), release: make(chan struct{})}
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := []*commonpb.Payload{plain("x")}
	if _, err := c.ForSubject("cached").EncodeContext(ctx, in); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := c.ForSubject("slow").EncodeContext(ctx, in)
		slowDone <- err
	}()
	<-kr.entered
	for _, tc := range []struct {
		name string
		c    *codec.Codec
	}{
		{"another namespace", c.ForNamespace("billing")},
		{"the namespace key", c},
		{"a subject with a cached key", c.ForSubject("cached")},
		{"another new subject", c.ForSubject("fresh")},
	} {
		if _, err := tc.c.EncodeContext(ctx, in); err != nil {
			t.Errorf("%s while another subject's keyring call hangs: %v", tc.name, err)
		}
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the hung encode returned before its keyring call did: %v", err)
	default:
	}
	// A second encode for the hung subject waits for the same call (one
	// keyring call per key), and gives up with its own context.
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.ForSubject("slow").EncodeContext(wctx, in); !errors.Is(err, context.Canceled) {
		t.Errorf("a second encode for the hung subject with a canceled context: %v, want context.Canceled", err)
	}
	close(kr.release)
	if err := <-slowDone; err != nil {
		t.Fatalf("the hung encode after its call returned: %v", err)
	}
}

// TestSubjectKeysLeaveTheCachesByTime: data keys under a subject's key
// leave both caches once SubjectKeyMaxAge has passed, even in a process
// that does nothing else (a timer, not the next cache miss). They used to
// be swept only past 1,024 seal cache entries, and never from the decode
// cache.
func TestSubjectKeysLeaveTheCachesByTime(t *testing.T) {
	t.Parallel()
	var nowNS atomic.Int64
	nowNS.Store(time.Unix(1_800_000_000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, nowNS.Load()) }
	kr := subjectKeyring(t)
	const maxAge = 50 * time.Millisecond
	c, err := codec.New(kr, codec.WithNow(codec.Options{SubjectKeyMaxAge: maxAge}, clock))
	if err != nil {
		t.Fatal(err)
	}
	var sealed []*commonpb.Payload
	for i := range 50 {
		out, err := c.ForSubject(fmt.Sprintf("customer-%d", i)).Encode([]*commonpb.Payload{plain("x")})
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, out...)
	}
	ns, err := c.Encode([]*commonpb.Payload{plain("namespace")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(append(sealed, ns...)); err != nil {
		t.Fatal(err)
	}
	if n := codec.SealKeysCached(c); n != 51 {
		t.Fatalf("%d sealing keys cached, want 51", n)
	}
	if _, subj := codec.DecodeKeysCached(c); subj != 50 {
		t.Fatalf("%d subject keys in the decode cache, want 50", subj)
	}
	nowNS.Add(int64(maxAge) + 1) // every subject key has expired; nothing else runs
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, subj := codec.DecodeKeysCached(c)
		sealN := codec.SealKeysCached(c)
		if subj == 0 && sealN == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("past SubjectKeyMaxAge: %d subject keys still in the decode cache, %d sealing keys (want 0 and the namespace's 1)", subj, sealN)
		}
		time.Sleep(10 * time.Millisecond) // polling the cache, with the deadline above
	}
	if all, _ := codec.DecodeKeysCached(c); all != 1 {
		t.Errorf("the namespace key left the decode cache too: %d keys cached, want 1", all)
	}
}

// TestSealKeyCacheIsBounded: namespaces and subjects come from callers
// (serialization contexts, the X-Namespace header); the seal cache keeps
// at most a bounded number of them, expired or not.
func TestSealKeyCacheIsBounded(t *testing.T) {
	t.Parallel()
	c, err := codec.New(keyringtest.New(), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := []*commonpb.Payload{plain("x")}
	for i := range 6000 {
		if _, err := c.ForNamespace(fmt.Sprintf("ns-%d", i)).Encode(in); err != nil {
			t.Fatal(err)
		}
	}
	if n := codec.SealKeysCached(c); n > 4096 {
		t.Errorf("%d sealing keys cached for 6,000 live namespaces, want at most 4,096", n)
	}
}

// countingStore counts the store's unwrap calls.
type countingKeyStore struct {
	subject.Store
	calls atomic.Int64
}

func (s *countingKeyStore) UnwrapDataKeys(ctx context.Context, ns string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	s.calls.Add(1)
	return s.Store.UnwrapDataKeys(ctx, ns, keys)
}

// TestForgedSubjectKeyIDsFailAsUnknown: 10,000 payloads naming 10,000
// subject keys that never existed cost a couple of store calls and fail
// the request as unknown keys; they used to be shown as 10,000 "erased"
// placeholders after one store call each and a quadratic duplicate check.
func TestForgedSubjectKeyIDsFailAsUnknown(t *testing.T) {
	t.Parallel()
	d, _ := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	store := &countingKeyStore{Store: d}
	kr, _ := subject.New(keyringtest.New(), store, subject.Options{})
	c, _ := codec.New(kr, codec.Options{})
	sealed, err := c.ForSubject("customer-1").Encode([]*commonpb.Payload{plain("x")})
	if err != nil {
		t.Fatal(err)
	}
	forged := make([]*commonpb.Payload, 10000)
	for i := range forged {
		md := map[string][]byte{}
		for k, v := range sealed[0].Metadata {
			md[k] = v
		}
		md["encryption-key-id"] = fmt.Appendf(nil, "subject/dir/%032x/%016x", i, i)
		forged[i] = &commonpb.Payload{Metadata: md, Data: sealed[0].Data}
	}
	fresh, _ := codec.New(kr, codec.Options{})
	store.calls.Store(0)
	_, erased, err := fresh.DecodeErasable(context.Background(), forged)
	if err == nil || errors.Is(err, codec.ErrErased) || !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("forged key IDs: err %v (%d erased), want ErrUnknownKey", err, len(erased))
	}
	if n := store.calls.Load(); n > 2 {
		t.Errorf("%d store calls for a request of forged key IDs, want at most 2", n)
	}
}

// BenchmarkForgedSubjectKeyIDs decodes, as the codec server does
// (DecodeErasable), one request of 10,000 payloads naming 10,000 distinct
// subject keys that never existed: CPU per request. The baseline is the
// same request with 10,000 payloads under one real subject key.
func BenchmarkForgedSubjectKeyIDs(b *testing.B) {
	d, _ := subject.InitDir(filepath.Join(b.TempDir(), "subjects"))
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	c, _ := codec.New(kr, codec.Options{})
	in := make([]*commonpb.Payload, 10000)
	for i := range in {
		in[i] = plain("x")
	}
	sealed, err := c.ForSubject("customer-1").Encode(in)
	if err != nil {
		b.Fatal(err)
	}
	forged := make([]*commonpb.Payload, len(sealed))
	for i, p := range sealed {
		md := map[string][]byte{}
		for k, v := range p.Metadata {
			md[k] = v
		}
		md["encryption-key-id"] = fmt.Appendf(nil, "subject/dir/%032x/%016x", i, i)
		forged[i] = &commonpb.Payload{Metadata: md, Data: p.Data}
	}
	for _, bc := range []struct {
		name string
		in   []*commonpb.Payload
	}{{"genuine", sealed}, {"forged", forged}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fresh, _ := codec.New(kr, codec.Options{})
				fresh.DecodeErasable(context.Background(), bc.in)
			}
		})
	}
}

// TestInProcessShredDropsCachedSubjectKeysAtOnce: a shred through the
// keyring a codec uses removes every cached data subject key from the
// codec's memory before Shred returns, with no encode or decode in
// between; the namespace's keys stay. (A shred used to purge nothing: the
// same process sealed with the shredded key right after it.)
func TestInProcessShredDropsCachedSubjectKeysAtOnce(t *testing.T) {
	t.Parallel()
	kr := subjectKeyring(t)
	c, _ := codec.New(kr, codec.Options{})
	sealed, err := c.ForSubject("customer-1").Encode([]*commonpb.Payload{plain("x")})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.Encode([]*commonpb.Payload{plain("y")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(append(sealed, ns...)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.Shred(context.Background(), subject.Request{Namespace: codec.DefaultNamespace, Subject: "customer-2"}); err != nil {
		t.Fatal(err)
	}
	all, subj := codec.DecodeKeysCached(c)
	if n := codec.SealKeysCached(c); n != 1 || subj != 0 || all != 1 {
		t.Errorf("right after a shred: %d sealing keys, %d decode keys (%d of subjects); want the namespace's 1, 1, 0", n, all, subj)
	}
}
