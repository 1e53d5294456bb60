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

// newDir initialises a Dir store in a fresh folder.
func newDir(t testing.TB) *subject.Dir {
	t.Helper()
	d, err := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// person is the subject ID the tests seal for: an e-mail address, what
// real applications use and what must never reach a key ID, a file name,
// a Vault key name, an audit line or an error.
const person = "ada.smith@example.com"

func ns(namespace, id string) converter.SerializationContext {
	return converter.WorkflowSerializationContext{Namespace: namespace, WorkflowID: id}
}

func bySubjectOf(sc converter.SerializationContext) string {
	if w, ok := sc.(converter.WorkflowSerializationContext); ok {
		if id, ok := strings.CutPrefix(w.WorkflowID, "onboard-"); ok {
			return id
		}
	}
	return customerOf(sc)
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
	c, err := codec.New(kr, codec.Options{Subject: bySubjectOf})
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
	h1, _ := kr.Handle(ctx, "default", "customer-1")
	h2, _ := kr.Handle(ctx, "default", "customer-2")
	prefix := keyring.SubjectKeyIDPrefix + store.Name() + "/"
	for _, tc := range []struct {
		name, wantPrefix string
		p                *commonpb.Payload
	}{
		{"a customer's workflow payload names the customer's handle", prefix + h1 + "/", a[0]},
		{"another customer's payload names that customer's handle", prefix + h2 + "/", b[0]},
		{"an activity of the workflow names the customer's handle", prefix + h1 + "/", act[0]},
		{"a payload without subject keeps the namespace key", "test/", n[0]},
	} {
		if got := string(tc.p.Metadata["encryption-key-id"]); !strings.HasPrefix(got, tc.wantPrefix) {
			t.Errorf("%s: key ID %q, want prefix %q", tc.name, got, tc.wantPrefix)
		}
		for k, v := range tc.p.Metadata {
			if bytes.Contains(v, []byte("customer-")) {
				t.Errorf("%s: metadata %s holds the subject ID: %q", tc.name, k, v)
			}
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

	h, existed, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "Customer-1", By: "test", Reference: "TICKET-1"})
	if err != nil || !existed || h != h1 {
		t.Fatalf("shred (subject IDs are case-insensitive): handle %s existed %v, err %v", h, existed, err)
	}
	if _, existed, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "customer-1", By: "test"}); err != nil || existed {
		t.Fatalf("second shred: existed %v, err %v; want false, nil", existed, err)
	}
	for _, want := range []string{`"msg":"data subject key shredded"`, `"handle":"` + h1 + `"`, `"namespace":"default"`, `"reference":"TICKET-1"`, `"result":"shredded"`, `"store_id":"` + store.ID() + `"`} {
		if !strings.Contains(audit.String(), want) {
			t.Errorf("audit log lacks %s: %s", want, audit.String())
		}
	}
	if strings.Contains(audit.String(), "customer-1") || strings.Contains(audit.String(), "subject_id") {
		t.Errorf("audit log names the subject without --record-subject: %s", audit.String())
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

	// The shred sticks: sealing for the subject fails (an activity retry,
	// a signal, a new workflow with the same ID) until it is re-admitted.
	fresh3, _ := codec.New(kr, codec.Options{Subject: bySubjectOf})
	if _, err := fresh3.WithSerializationContext(wf("onboard-customer-1")).Encode([]*commonpb.Payload{plain("alice again")}); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("seal after the shred: err %v, want ErrErased", err)
	} else if strings.Contains(err.Error(), "customer-1") {
		t.Errorf("seal error names the subject: %v", err)
	}
	// Other subjects seal as before.
	encodeFor(t, fresh3, "onboard-customer-2", plain("bob again"))
	if _, was, err := kr.Readmit(ctx, subject.Request{Namespace: "default", Subject: "customer-1", By: "test"}); err != nil || !was {
		t.Fatalf("readmit: was %v, err %v", was, err)
	}
	if !strings.Contains(audit.String(), `"msg":"data subject re-admitted"`) {
		t.Errorf("audit log lacks the re-admission: %s", audit.String())
	}
	// The customer comes back: a new key, but the old payloads stay erased.
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

	// A key that never existed is unknown, not erased: a forged key ID,
	// or a store that is not the one the payloads were sealed with.
	never := keyring.SubjectKeyIDPrefix + store.Name() + "/" + strings.Repeat("ab", 16) + "/0011223344556677"
	if _, err := kr.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: never, Wrapped: []byte("vault:v1:AAAA")}}); !errors.Is(err, keyring.ErrUnknownKey) || errors.Is(err, keyring.ErrErased) {
		t.Errorf("a key that never existed: err %v, want ErrUnknownKey", err)
	}
	forged := append([]*commonpb.Payload(nil), b...)
	forged[0] = &commonpb.Payload{Metadata: map[string][]byte{}, Data: b[0].Data}
	for k, v := range b[0].Metadata {
		forged[0].Metadata[k] = v
	}
	forged[0].Metadata["encryption-key-id"] = []byte(never)
	if _, _, err := fresh3.DecodeErasable(ctx, forged); err == nil || errors.Is(err, codec.ErrErased) {
		t.Errorf("DecodeErasable of a payload naming a key that never existed: err %v, want a failure that is not erased", err)
	}

	// Keys belong to a namespace: the same subject in two namespaces has
	// two keys, and a shred in one leaves the other readable.
	orders := encodeForNS(t, c, "orders", "onboard-"+person, plain("order of Ada"))
	billing := encodeForNS(t, c, "billing", "onboard-"+person, plain("invoice of Ada"))
	if bytes.Equal(orders[0].Metadata["encryption-key-id"][:len(prefix)+32], billing[0].Metadata["encryption-key-id"][:len(prefix)+32]) {
		t.Fatalf("one handle for two namespaces: %q", orders[0].Metadata["encryption-key-id"])
	}
	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "orders", Subject: person, By: "test"}); err != nil {
		t.Fatal(err)
	}
	fresh4, _ := codec.New(kr, codec.Options{})
	if _, err := fresh4.ForNamespace("orders").Decode(orders); !errors.Is(err, codec.ErrErased) {
		t.Errorf("orders after its shred: err %v, want ErrErased", err)
	}
	if got, err := fresh4.ForNamespace("billing").Decode(billing); err != nil || string(got[0].Data) != `"invoice of Ada"` {
		t.Errorf("billing after the shred in orders: %v", err)
	}
	if strings.Contains(audit.String(), person) {
		t.Errorf("audit log names the subject: %s", audit.String())
	}
}

func encodeForNS(t *testing.T, c *codec.Codec, namespace, id string, ps ...*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	out, err := c.WithSerializationContext(ns(namespace, id)).Encode(ps)
	if err != nil {
		t.Fatalf("encode for %s in %s: %v", id, namespace, err)
	}
	return out
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
	exerciseStore(t, func(t *testing.T) subject.Store { return newDir(t) })
}

// TestDirStoreHoldsNoSubjectID looks at every file name and byte of a
// store after sealing for and shredding a person: only handles.
func TestDirStoreHoldsNoSubjectID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "subjects")
	d, err := subject.InitDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	c, _ := codec.New(kr, codec.Options{Subject: bySubjectOf})
	encodeForNS(t, c, "orders", "onboard-"+person, plain("x"))
	encodeForNS(t, c, "billing", "onboard-"+person, plain("y"))
	check := func(when string) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			if strings.Contains(strings.ToLower(e.Name()), "ada") || bytes.Contains(bytes.ToLower(b), []byte("ada")) {
				t.Errorf("%s: file %s names the subject", when, e.Name())
			}
		}
	}
	check("after sealing")
	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "orders", Subject: person}); err != nil {
		t.Fatal(err)
	}
	check("after the shred")
}

func TestDirStoreRace(t *testing.T) {
	t.Parallel()
	d := newDir(t)
	// Separate Dir values share nothing in memory, like separate processes.
	exerciseRace(t, raceDir{d})
}

// raceDir opens a new Dir for every call, as separate processes would.
type raceDir struct {
	*subject.Dir
}

func (r raceDir) NewDataKey(ctx context.Context, ns, h string) (keyring.DataKey, error) {
	d, err := subject.NewDir(r.Dir.Folder())
	if err != nil {
		return keyring.DataKey{}, err
	}
	return d.NewDataKey(ctx, ns, h)
}

// TestInProcessShredPurgesAtOnce: a shred through the Keyring a codec
// uses takes effect in that codec at once, for sealing and opening.
func TestInProcessShredPurgesAtOnce(t *testing.T) {
	t.Parallel()
	d := newDir(t)
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	c, _ := codec.New(kr, codec.Options{Subject: customerOf})
	sealed := encodeFor(t, c, "onboard-customer-8", plain("dave"))
	if _, err := c.Decode(sealed); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.Shred(context.Background(), subject.Request{Namespace: "default", Subject: "customer-8"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WithSerializationContext(wf("onboard-customer-8")).Encode([]*commonpb.Payload{plain("dave 2")}); !errors.Is(err, codec.ErrErased) {
		t.Errorf("seal right after an in-process shred: err %v, want ErrErased", err)
	}
	if _, err := c.Decode(sealed); !errors.Is(err, codec.ErrErased) {
		t.Errorf("decode right after an in-process shred: err %v, want ErrErased", err)
	}
}

func TestSubjectErrors(t *testing.T) {
	t.Parallel()
	d := newDir(t)
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
		if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: tc.subject}); err == nil {
			t.Errorf("%s: Shred accepted %q", tc.name, tc.subject)
		}
	}
	if _, _, err := kr.Shred(ctx, subject.Request{Subject: "customer-9"}); err == nil {
		t.Error("Shred without a namespace succeeded")
	}
	dk, err := kr.NewSubjectDataKey(ctx, "default", "customer-9")
	if err != nil {
		t.Fatal(err)
	}
	h9, _ := kr.Handle(ctx, "default", "customer-9")
	for _, tc := range []struct {
		name string
		w    keyring.WrappedKey
		want error
	}{
		{"another store's key ID", keyring.WrappedKey{KeyID: "subject/vault/" + h9 + "/0011223344556677", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		{"a malformed key ID", keyring.WrappedKey{KeyID: "subject/dir/" + h9, Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		{"a subject ID in place of a handle", keyring.WrappedKey{KeyID: "subject/dir/customer-9/0011223344556677", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		{"a tampered wrapped key", keyring.WrappedKey{KeyID: dk.KeyID, Wrapped: append(append([]byte(nil), dk.Wrapped[:len(dk.Wrapped)-1]...), dk.Wrapped[len(dk.Wrapped)-1]^1)}, keyring.ErrUnwrap},
		{"a key of a handle that never had one", keyring.WrappedKey{KeyID: "subject/dir/" + strings.Repeat("0", 32) + "/0011223344556677", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
		{"another generation of a live key", keyring.WrappedKey{KeyID: "subject/dir/" + h9 + "/0011223344556677", Wrapped: dk.Wrapped}, keyring.ErrUnknownKey},
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
	dk10, _ := kr.NewSubjectDataKey(ctx, "default", "customer-10")
	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "customer-10"}); err != nil {
		t.Fatal(err)
	}
	batch := []keyring.WrappedKey{{KeyID: nk.KeyID, Wrapped: nk.Wrapped}, {KeyID: dk.KeyID, Wrapped: dk.Wrapped}, {KeyID: dk10.KeyID, Wrapped: dk10.Wrapped}}
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
	if bk.KeyGeneration() == before {
		t.Errorf("KeyGeneration did not follow a rotation of the namespace keyring: %d -> %d", before, bk.KeyGeneration())
	}
	before = bk.KeyGeneration()
	if _, _, err := bk.Shred(ctx, subject.Request{Namespace: "default", Subject: "customer-11"}); err != nil {
		t.Fatal(err)
	}
	if bk.KeyGeneration() == before {
		t.Error("KeyGeneration did not change with a shred")
	}
	plainKR, _ := subject.New(struct{ keyring.Keyring }{keyringtest.New()}, d, subject.Options{})
	if g := plainKR.KeyGeneration(); g != 0 {
		t.Errorf("KeyGeneration over a keyring that does not rotate: %d, want 0", g)
	}
}
