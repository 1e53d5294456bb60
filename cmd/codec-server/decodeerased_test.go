package main

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestDecodeShowsErasedPayloadsAsTheServerDoes: decode runs the server's
// codec chain, with the data subject store of the keyring settings: a
// payload of a shredded data subject shows as the server's erased text and
// the rest of the history decodes.
func TestDecodeShowsErasedPayloadsAsTheServerDoes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys, sdir := filepath.Join(dir, "keys.json"), filepath.Join(dir, "subjects")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	f, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := subject.InitDir(sdir)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := subject.New(f, store, subject.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain := func(s string) []*commonpb.Payload {
		return []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + s + `"`)}}
	}
	gone, err := c.ForSubject("customer-1").Encode(plain("gone-secret"))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := c.Encode(plain("kept-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.Shred(context.Background(), subject.Request{Namespace: codec.DefaultNamespace, Subject: "customer-1"}); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "history.json")
	if err := os.WriteFile(input, []byte(history(t, gone[0], kept[0])), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runBinary(t, dir, nil, "decode", "--keys-file", keys, "--subject-store", "dir", "--subject-dir", sdir, input)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// decode prints payloads as protojson does: data in base64.
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	if !strings.Contains(out, b64(strconv.Quote(codecserver.ErasedText))) || !strings.Contains(out, b64(`"kept-secret"`)) {
		t.Errorf("decode output lacks the erased text or the kept payload:\n%s", out)
	}
}
