package codec_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestDecodeErasableOncePerErasedKeyID: whether a payload is erased
// depends only on its key ID (the subject key it names), so a shredded
// subject's history sealed under many data keys (DataKeyMaxUses,
// DataKeyMaxAge: a long-running workflow) costs one store call, not one
// per data key.
func TestDecodeErasableOncePerErasedKeyID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, _ := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	store := &countingStore{Store: d}
	kr, _ := subject.New(keyringtest.New(), store, subject.Options{})
	w, _ := codec.New(kr, codec.Options{DataKeyMaxUses: 1})
	in := make([]*commonpb.Payload, 20)
	for i := range in {
		in[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}
	}
	gone, err := w.ForSubject("alice").Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(gone[0].Metadata["encryption-wrapped-key"]) == string(gone[1].Metadata["encryption-wrapped-key"]) {
		t.Fatal("payloads share a data key; the test needs one per payload")
	}
	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	r, _ := codec.New(kr, codec.Options{})
	store.unwraps = 0
	_, erased, err := r.DecodeErasable(ctx, gone)
	if err != nil || len(erased) != len(gone) {
		t.Fatalf("erased %d of %d, err %v", len(erased), len(gone), err)
	}
	// The batch call, then alice's key ID once.
	if store.unwraps != 2 {
		t.Errorf("%d store calls for %d payloads of one erased subject key, want 2", store.unwraps, len(gone))
	}
}

// TestDecodeErasableForeignNamespaceFails: a payload of an erased subject
// key relabelled to another namespace fails as a namespace mismatch, next
// to a payload under the same key ID that is erased: a foreign payload
// must fail loudly, never become a placeholder. (A regression guard: the
// whole-batch decode checks namespaces before asking the store.)
func TestDecodeErasableForeignNamespaceFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, _ := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	kr, _ := subject.New(keyringtest.New(), d, subject.Options{})
	w, _ := codec.New(kr, codec.Options{DataKeyMaxUses: 1})
	in := []*commonpb.Payload{
		{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)},
		{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"y"`)},
	}
	sealed, err := w.ForSubject("alice").Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "alice"}); err != nil {
		t.Fatal(err)
	}
	foreign := &commonpb.Payload{Metadata: map[string][]byte{}, Data: sealed[1].Data}
	for k, v := range sealed[1].Metadata {
		foreign.Metadata[k] = v
	}
	foreign.Metadata["encryption-namespace"] = []byte("billing")
	r, _ := codec.New(kr, codec.Options{})
	_, erased, err := r.DecodeErasable(ctx, []*commonpb.Payload{sealed[0], foreign})
	var nsErr *codec.NamespaceError
	if !errors.As(err, &nsErr) {
		t.Fatalf("erased %v, err %v; want a NamespaceError", erased, err)
	}
}
