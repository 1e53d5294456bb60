package subject_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// customerOf is the Subject function of the tests: workflow
// "onboard-customer-42" belongs to data subject "customer-42".
func customerOf(sc converter.SerializationContext) string {
	var id string
	switch s := sc.(type) {
	case converter.WorkflowSerializationContext:
		id = s.WorkflowID
	case converter.ActivitySerializationContext:
		id = s.WorkflowID
	}
	if i := strings.Index(id, "customer-"); i >= 0 {
		return id[i:]
	}
	return ""
}

func plain(s string) *commonpb.Payload {
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + s + `"`)}
}

func wf(id string) converter.SerializationContext {
	return converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: id}
}

// encodeFor seals payloads the way a worker of workflow id does.
func encodeFor(t *testing.T, c *codec.Codec, id string, ps ...*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	out, err := c.WithSerializationContext(wf(id)).Encode(ps)
	if err != nil {
		t.Fatalf("encode for %s: %v", id, err)
	}
	return out
}

// exerciseStore checks what every store must do, through a codec.
func exerciseStore(t *testing.T, newStore func(t *testing.T) subject.Store) {
	ctx := context.Background()
	var audit bytes.Buffer
	store := newStore(t)
	kr, err := subject.New(keyringtest.New(), store, subject.Options{AuditLog: slog.New(slog.NewJSONHandler(&audit, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(kr, codec.Options{Subject: customerOf})
	if err != nil {
		t.Fatal(err)
	}
	a := encodeFor(t, c, "onboard-customer-1", plain("alice@example.com"))
	b := encodeFor(t, c, "onboard-customer-2", plain("bob@example.com"))
	n := encodeFor(t, c, "nightly-report", plain("report"))
	// Activities of a customer's workflow use the customer's key too.
	act, err := c.WithSerializationContext(converter.ActivitySerializationContext{Namespace: "default", WorkflowID: "onboard-customer-1"}).Encode([]*commonpb.Payload{plain("activity input")})
	if err != nil {
		t.Fatal(err)
	}
	prefix := keyring.SubjectKeyIDPrefix + store.Name() + "/"
	for _, tc := range []struct {
		name, wantPrefix string
		p                *commonpb.Payload
	}{
		{"a customer's workflow payload names the customer's key", prefix + "customer-1/", a[0]},
		{"another customer's payload names that customer's key", prefix + "customer-2/", b[0]},
		{"an activity of the workflow names the customer's key", prefix + "customer-1/", act[0]},
		{"a payload without subject keeps the namespace key", "test/", n[0]},
	} {
		if got := string(tc.p.Metadata["encryption-key-id"]); !strings.HasPrefix(got, tc.wantPrefix) {
			t.Errorf("%s: key ID %q, want prefix %q", tc.name, got, tc.wantPrefix)
		}
		if bytes.Contains(tc.p.Data, []byte("example.com")) {
			t.Errorf("%s: plaintext in sealed data", tc.name)
		}
	}
	all := []*commonpb.Payload{a[0], b[0], n[0], act[0]}
	// A fresh codec (empty caches) opens all of them in one decode.
	fresh, _ := codec.New(kr, codec.Options{})
	got, err := fresh.Decode(all)
	if err != nil {
		t.Fatalf("decode before shred: %v", err)
	}
	if string(got[0].Data) != `"alice@example.com"` || string(got[1].Data) != `"bob@example.com"` {
		t.Fatalf("decode before shred: got %q, %q", got[0].Data, got[1].Data)
	}

	existed, err := kr.Shred(ctx, "customer-1", "test")
	if err != nil || !existed {
		t.Fatalf("shred: existed %v, err %v", existed, err)
	}
	if existed, err := kr.Shred(ctx, "customer-1", "test"); err != nil || existed {
		t.Fatalf("second shred: existed %v, err %v; want false, nil", existed, err)
	}
	if !strings.Contains(audit.String(), `"msg":"data subject key shredded"`) || !strings.Contains(audit.String(), `"subject_id":"customer-1"`) || !strings.Contains(audit.String(), `"result":"shredded"`) {
		t.Errorf("audit log lacks the shred line: %s", audit.String())
	}

	// A new codec (another worker, a restarted server) gets ErrErased.
	fresh2, _ := codec.New(kr, codec.Options{})
	for _, tc := range []struct {
		name string
		in   []*commonpb.Payload
	}{
		{"the workflow payload", a},
		{"the activity payload", act},
		{"a batch mixing subjects", all},
	} {
		if _, err := fresh2.Decode(tc.in); !errors.Is(err, codec.ErrErased) {
			t.Errorf("%s after shred: err %v, want ErrErased", tc.name, err)
		}
	}
	// DecodeErasable opens the rest and names the erased ones.
	out, erased, err := fresh2.DecodeErasable(ctx, all)
	if err != nil {
		t.Fatalf("DecodeErasable: %v", err)
	}
	if len(erased) != 2 || erased[0] != 0 || erased[1] != 3 || out[0] != nil || out[3] != nil {
		t.Fatalf("DecodeErasable: erased %v, want [0 3] with nil payloads", erased)
	}
	if string(out[1].Data) != `"bob@example.com"` || string(out[2].Data) != `"report"` {
		t.Fatalf("DecodeErasable: others %q %q", out[1].Data, out[2].Data)
	}

	// The customer comes back: a new key, but the old payloads stay erased.
	fresh3, _ := codec.New(kr, codec.Options{Subject: customerOf})
	back := encodeFor(t, fresh3, "onboard-customer-1", plain("alice again"))
	if string(back[0].Metadata["encryption-key-id"]) == string(a[0].Metadata["encryption-key-id"]) {
		t.Fatalf("a key created after the shred has the shredded key's ID %q", back[0].Metadata["encryption-key-id"])
	}
	if _, err := fresh3.Decode(back); err != nil {
		t.Fatalf("decode of the new key's payload: %v", err)
	}
	if _, err := fresh3.Decode(a); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("old payload after the subject's key was created again: err %v, want ErrErased", err)
	}
}

// exerciseRace has many codecs (workers) seal for one new subject at once:
// every payload must open, so they all used the same subject key.
func exerciseRace(t *testing.T, store subject.Store) {
	kr, err := subject.New(keyringtest.New(), store, subject.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const workers = 8
	sealed := make([][]*commonpb.Payload, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _ := codec.New(kr, codec.Options{Subject: customerOf})
			sealed[w], _ = c.WithSerializationContext(wf("onboard-customer-race")).Encode([]*commonpb.Payload{plain("x")})
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	var all []*commonpb.Payload
	for w, s := range sealed {
		if len(s) != 1 {
			t.Fatalf("worker %d failed to seal", w)
		}
		ids[string(s[0].Metadata["encryption-key-id"])] = true
		all = append(all, s[0])
	}
	if len(ids) != 1 {
		t.Fatalf("workers used %d subject keys, want 1: %v", len(ids), ids)
	}
	c, _ := codec.New(kr, codec.Options{})
	if _, err := c.Decode(all); err != nil {
		t.Fatalf("decode: %v", err)
	}
}

func TestDirStore(t *testing.T) {
	t.Parallel()
	exerciseStore(t, func(t *testing.T) subject.Store {
		d, err := subject.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestDirStoreRace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Separate Dir values share nothing in memory, like separate processes.
	d, _ := subject.NewDir(dir)
	exerciseRace(t, raceDir{d, dir})
}

// raceDir opens a new Dir for every call, as separate processes would.
type raceDir struct {
	*subject.Dir
	dir string
}

func (r raceDir) NewDataKey(ctx context.Context, s string) (keyring.DataKey, error) {
	d, err := subject.NewDir(r.dir)
	if err != nil {
		return keyring.DataKey{}, err
	}
	return d.NewDataKey(ctx, s)
}

func TestSubjectKeyMaxAge(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d, _ := subject.NewDir(t.TempDir())
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	c, err := codec.New(kr, codec.Options{Subject: customerOf, Now: clock, SubjectKeyMaxAge: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sealed := encodeFor(t, c, "onboard-customer-7", plain("carol"))
	if _, err := c.Decode(sealed); err != nil { // caches the data key
		t.Fatal(err)
	}
	if _, err := kr.Shred(context.Background(), "customer-7", "test"); err != nil {
		t.Fatal(err)
	}
	// Within the bound the caches may still serve the subject ...
	mu.Lock()
	now = now.Add(29 * time.Second)
	mu.Unlock()
	if _, err := c.Decode(sealed); err != nil {
		t.Fatalf("decode within SubjectKeyMaxAge from the cache: %v", err)
	}
	// ... past it neither decode nor seal does, although the namespace's
	// caches (15 minutes, one hour) have not expired.
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if _, err := c.Decode(sealed); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("decode past SubjectKeyMaxAge: err %v, want ErrErased", err)
	}
	next := encodeFor(t, c, "onboard-customer-7", plain("carol 2"))
	if next[0].Metadata["encryption-key-id"] == nil || string(next[0].Metadata["encryption-key-id"]) == string(sealed[0].Metadata["encryption-key-id"]) {
		t.Fatalf("seal past SubjectKeyMaxAge reused the shredded key %q", sealed[0].Metadata["encryption-key-id"])
	}
}

func TestSubjectErrors(t *testing.T) {
	t.Parallel()
	d, _ := subject.NewDir(t.TempDir())
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		subject string
	}{
		{"an empty subject", ""},
		{"a path", "../etc"},
		{"a slash", "a/b"},
		{"a trailing dot", "customer."},
		{"too long", strings.Repeat("a", keyring.MaxSubjectLen+1)},
	} {
		if _, err := kr.NewSubjectDataKey(ctx, "default", tc.subject); err == nil {
			t.Errorf("%s: NewSubjectDataKey accepted %q", tc.name, tc.subject)
		}
		if _, err := kr.Shred(ctx, tc.subject, "test"); err == nil {
			t.Errorf("%s: Shred accepted %q", tc.name, tc.subject)
		}
	}
	dk, err := kr.NewSubjectDataKey(ctx, "default", "customer-9")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		w    keyring.WrappedKey
		want error
	}{
		{"another store's key ID", keyring.WrappedKey{KeyID: "subject/vault/customer-9/1", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		{"a malformed key ID", keyring.WrappedKey{KeyID: "subject/dir/customer-9", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		{"a tampered wrapped key", keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: append(append([]byte(nil), dk.Wrapped[:len(dk.Wrapped)-1]...), dk.Wrapped[len(dk.Wrapped)-1]^1)}, keyring.ErrUnwrap},
		{"a key of an unknown subject", keyring.WrappedKey{KeyID: "subject/dir/customer-10/00", Wrapped: dk.Wrapped}, keyring.ErrErased},
	} {
		if _, err := kr.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{tc.w}); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	// A failure names its key by its index in the whole call, whichever
	// part (namespace keyring or store) it came from.
	nk, err := kr.NewDataKey(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	batch := []keyring.WrappedKey{{KeyID: nk.KeyID, Wrapped: nk.Wrapped}, {KeyID: dk.KeyID, Wrapped: dk.Wrapped}, {KeyID: "subject/dir/customer-12/00", Wrapped: dk.Wrapped}}
	if _, err := kr.UnwrapDataKeys(ctx, "default", batch); !errors.Is(err, keyring.ErrErased) {
		t.Errorf("batch with an erased key: err %v, want ErrErased", err)
	} else if i, ok := keyring.FailedKey(err); !ok || i != 2 {
		t.Errorf("batch with an erased key: FailedKey = %d, %v; want 2, true", i, ok)
	}
	batch[0].Wrapped = append([]byte(nil), nk.Wrapped...)
	batch[0].Wrapped[0] ^= 1
	if _, err := kr.UnwrapDataKeys(ctx, "default", batch[:2]); err == nil {
		t.Error("a tampered namespace key unwrapped")
	} else if i, ok := keyring.FailedKey(err); ok && i != 0 {
		t.Errorf("a tampered namespace key: FailedKey = %d, want 0", i)
	}

	// The namespace keyring's rotations still reach the codec.
	dir := t.TempDir()
	keys := filepath.Join(dir, "k.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	f, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fk, _ := subject.New(f, d, subject.Options{})
	if fk.KeyGeneration() != f.KeyGeneration() {
		t.Errorf("KeyGeneration %d, want the key file's %d", fk.KeyGeneration(), f.KeyGeneration())
	}
	base := keyringtest.New()
	bk, _ := subject.New(base, d, subject.Options{})
	before := bk.KeyGeneration()
	base.Rotate()
	if bk.KeyGeneration() == before || bk.KeyGeneration() != base.KeyGeneration() {
		t.Errorf("KeyGeneration did not follow a rotation of the namespace keyring: %d -> %d", before, bk.KeyGeneration())
	}
	plainKR, _ := subject.New(struct{ keyring.Keyring }{keyringtest.New()}, d, subject.Options{})
	if g := plainKR.KeyGeneration(); g != 0 {
		t.Errorf("KeyGeneration over a keyring that does not rotate: %d, want 0", g)
	}

	// A key file Shred has overwritten but not yet unlinked reads as erased.
	zeroDir := t.TempDir()
	zd, _ := subject.NewDir(zeroDir)
	zk, err := zd.NewDataKey(ctx, "customer-11")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(filepath.Join(zeroDir, "customer-11.key"))
	if err := os.WriteFile(filepath.Join(zeroDir, "customer-11.key"), make([]byte, info.Size()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := zd.UnwrapDataKeys(ctx, []keyring.WrappedKey{{KeyID: zk.KeyID, Wrapped: zk.Wrapped}}); !errors.Is(err, keyring.ErrErased) {
		t.Errorf("a zeroed key file: err %v, want ErrErased", err)
	}
	// A codec whose keyring holds no subject keys refuses to seal for one.
	c, _ := codec.New(keyringtest.New(), codec.Options{Subject: customerOf})
	if _, err := c.WithSerializationContext(wf("onboard-customer-1")).Encode([]*commonpb.Payload{plain("x")}); err == nil || !strings.Contains(err.Error(), "SubjectKeyring") {
		t.Errorf("encode with a subject and a plain keyring: err %v, want one naming keyring.SubjectKeyring", err)
	}
}

type keyringWrapped = keyring.WrappedKey
