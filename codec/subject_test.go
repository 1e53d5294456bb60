package codec_test

import (
	"context"
	"errors"
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

func subjectCodec(t *testing.T, opts codec.Options) *codec.Codec {
	t.Helper()
	d, err := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	c, err := codec.New(kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func subjectKeyIDOf(t *testing.T, c *codec.Codec) (string, string) {
	t.Helper()
	out, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`1`)}})
	if err != nil {
		t.Fatal(err)
	}
	return string(out[0].Metadata["encryption-key-id"]), string(out[0].Metadata["encryption-wrapped-key"])
}

func TestSubjectSelection(t *testing.T) {
	t.Parallel()
	bySuffix := func(sc converter.SerializationContext) string {
		if w, ok := sc.(converter.WorkflowSerializationContext); ok && strings.HasPrefix(w.WorkflowID, "order-") {
			return strings.TrimPrefix(w.WorkflowID, "order-")
		}
		return ""
	}
	c := subjectCodec(t, codec.Options{Subject: bySuffix})
	a := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "shop", WorkflowID: "order-alice"}).(*codec.Codec)
	b := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "shop", WorkflowID: "order-bob"}).(*codec.Codec)
	none := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "shop", WorkflowID: "report"}).(*codec.Codec)
	for _, tc := range []struct {
		name          string
		c             *codec.Codec
		wantSubject   string
		wantNamespace string
	}{
		{"a workflow mapped to a subject", a, "alice", "shop"},
		{"another subject", b, "bob", "shop"},
		{"a workflow mapped to none", none, "", "shop"},
		{"ForNamespace keeps the subject", a.ForNamespace("other"), "alice", "other"},
		{"ForSubject sets it", c.ForSubject("carol"), "carol", codec.DefaultNamespace},
		{"ForSubject with none clears it", a.ForSubject(""), "", "shop"},
		{"a context without a workflow keeps none", c.WithSerializationContext(nil).(*codec.Codec), "", codec.DefaultNamespace},
	} {
		if tc.c.Subject() != tc.wantSubject || tc.c.Namespace() != tc.wantNamespace {
			t.Errorf("%s: subject %q namespace %q, want %q %q", tc.name, tc.c.Subject(), tc.c.Namespace(), tc.wantSubject, tc.wantNamespace)
		}
	}
	// The seal cache is per (namespace, subject): each gets its own data
	// key, and each reuses its own on the next payload.
	idA, wA := subjectKeyIDOf(t, a)
	idB, wB := subjectKeyIDOf(t, b)
	idN, wN := subjectKeyIDOf(t, none)
	if !strings.HasPrefix(idA, "subject/dir/") || !strings.HasPrefix(idB, "subject/dir/") || idA[:44] == idB[:44] || keyring.IsSubjectKeyID(idN) || strings.Contains(idA+idB, "alice") || strings.Contains(idA+idB, "bob") {
		t.Fatalf("key IDs %q %q %q", idA, idB, idN)
	}
	for _, tc := range []struct {
		name    string
		c       *codec.Codec
		wrapped string
	}{{"alice", a, wA}, {"bob", b, wB}, {"none", none, wN}} {
		if _, w := subjectKeyIDOf(t, tc.c); w != tc.wrapped {
			t.Errorf("%s: the second payload got another data key; want the cached one", tc.name)
		}
	}
	// Without Options.Subject a context never selects a subject.
	plain := subjectCodec(t, codec.Options{})
	if s := plain.WithSerializationContext(converter.WorkflowSerializationContext{WorkflowID: "order-alice"}).(*codec.Codec).Subject(); s != "" {
		t.Errorf("no Options.Subject: subject %q, want none", s)
	}
}

// wrongSubjectKeyring claims subject keys but hands out namespace key IDs.
type wrongSubjectKeyring struct{ *keyringtest.Keyring }

func (k wrongSubjectKeyring) NewSubjectDataKey(ctx context.Context, ns, _ string) (keyring.DataKey, error) {
	return k.NewDataKey(ctx, ns)
}

func TestSubjectErrors(t *testing.T) {
	t.Parallel()
	if _, err := codec.New(keyringtest.New(), codec.Options{SubjectKeyMaxAge: -1}); err == nil {
		t.Error("negative SubjectKeyMaxAge accepted")
	}
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`1`)}}
	for _, tc := range []struct {
		name    string
		kr      keyring.Keyring
		subject string
		want    string
	}{
		{"a keyring without subject keys", keyringtest.New(), "alice", "keyring.SubjectKeyring"},
		{"a subject keyring that returns a namespace key ID", wrongSubjectKeyring{keyringtest.New()}, "alice", "want one starting with"},
		{"an invalid subject ID", wrongSubjectKeyring{keyringtest.New()}, "a/b", "data subject ID"},
	} {
		c, _ := codec.New(tc.kr, codec.Options{})
		if _, err := c.ForSubject(tc.subject).Encode(in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// countingStore counts the unwrap calls that reach a store.
type countingStore struct {
	subject.Store
	unwraps int
}

func (s *countingStore) UnwrapDataKeys(ctx context.Context, ns string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	s.unwraps++
	return s.Store.UnwrapDataKeys(ctx, ns, keys)
}

func TestDecodeErasable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, _ := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	store := &countingStore{Store: d}
	kr, _ := subject.New(keyringtest.New(), store, subject.Options{})
	w, _ := codec.New(kr, codec.Options{})
	seal := func(subj string, n int) []*commonpb.Payload {
		in := make([]*commonpb.Payload, n)
		for i := range in {
			in[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}
		}
		out, err := w.ForSubject(subj).Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	gone, kept := seal("alice", 50), seal("bob", 2)
	plain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"p"`)}
	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	batch := append(append(append([]*commonpb.Payload{plain, nil}, kept[0]), gone...), kept[1])
	r, _ := codec.New(kr, codec.Options{})
	out, erased, err := r.DecodeErasable(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(erased) != 50 || erased[0] != 3 || erased[49] != 52 {
		t.Fatalf("erased %d payloads from %v, want the 50 at 3..52", len(erased), erased[:min(3, len(erased))])
	}
	if out[0] != plain || out[1] != nil || string(out[2].Data) != `"x"` || string(out[53].Data) != `"x"` {
		t.Fatalf("the other payloads: %v", out)
	}
	// The batch call, bob's key once, alice's erased key once: never once
	// per erased payload.
	if store.unwraps != 3 {
		t.Errorf("%d store calls, want 3", store.unwraps)
	}
	// Without erased payloads it is DecodeContext.
	if _, erased, err := r.DecodeErasable(ctx, kept); err != nil || erased != nil {
		t.Errorf("no erased payloads: erased %v, err %v", erased, err)
	}
}

// customerOf: workflow "onboard-customer-42" belongs to "customer-42".
func customerOf(sc converter.SerializationContext) string {
	if w, ok := sc.(converter.WorkflowSerializationContext); ok {
		if i := strings.Index(w.WorkflowID, "customer-"); i >= 0 {
			return w.WorkflowID[i:]
		}
	}
	return ""
}

func plain(s string) *commonpb.Payload {
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + s + `"`)}
}

func wf(id string) converter.SerializationContext {
	return converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: id}
}

func encodeFor(t *testing.T, c *codec.Codec, id string, ps ...*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	out, err := c.WithSerializationContext(wf(id)).Encode(ps)
	if err != nil {
		t.Fatalf("encode for %s: %v", id, err)
	}
	return out
}

func TestSubjectKeyMaxAge(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d, _ := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	// The shred comes from another process: its own keyring on the store.
	other, _ := subject.New(keyringtest.New(), d, subject.Options{})
	c, err := codec.New(kr, codec.WithNow(codec.Options{Subject: customerOf, SubjectKeyMaxAge: 30 * time.Second}, clock))
	if err != nil {
		t.Fatal(err)
	}
	sealed := encodeFor(t, c, "onboard-customer-7", plain("carol"))
	if _, err := c.Decode(sealed); err != nil { // caches the data key
		t.Fatal(err)
	}
	if _, _, err := other.Shred(context.Background(), subject.Request{Namespace: "default", Subject: "customer-7"}); err != nil {
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
	if _, err := c.WithSerializationContext(wf("onboard-customer-7")).Encode([]*commonpb.Payload{plain("carol 2")}); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("seal past SubjectKeyMaxAge: err %v, want ErrErased (the shred blocks the subject)", err)
	}
}
