package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// FuzzDecodeDocuments feeds arbitrary input to the decode command's
// reader: it never panics, its errors are one line, and the text view
// reads everything it prints.
func FuzzDecodeDocuments(f *testing.F) {
	f.Add([]byte(`{"events":[{"input":{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IngiCg=="}]}}]}`))
	f.Add([]byte(`{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA==","encryption-key-id":""},"data":"AAAA"}`))
	f.Add([]byte("{}\n[]\n"))
	f.Add([]byte(`{"metadata":{"encoding":5}}`))
	c, err := codec.New(keyringtest.New(), codec.Options{})
	if err != nil {
		f.Fatal(err)
	}
	codecs := []converter.PayloadCodec{c, codec.NewZlib(codec.ZlibOptions{MaxDecompressedBytes: 1 << 16})}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		err := decodeDocuments(context.Background(), bytes.NewReader(in), &out, codecs)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
		// The text view reads whatever decodeDocuments printed.
		if err == nil {
			if _, err := readableDocuments(out.Bytes()); err != nil {
				t.Errorf("text view of %q: %v", out.Bytes(), err)
			}
		}
	})
}
